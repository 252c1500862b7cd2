package main

// "kube control-plane" runs kube-apiserver, kube-controller-manager and kube-scheduler as goroutines of
// one process. Three processes of this binary each keep their own copy of its touched pages resident and
// their own Go runtime; one process shares both, which is most of a local cluster's memory.
//
// The components are driven through their exported options, Run and Setup functions instead of their
// cobra commands, because the commands install process-wide signal handlers (a second installation
// panics) and apply the logging configuration (a second application is an error). Everything
// process-global is done once here: flags of all three are parsed before the shared feature gates are
// set, logging is configured from the apiserver's flags, and signals are handled by this file.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	controllermanageroptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// Each component's flags are passed as --<prefix>=<flag>, e.g. --apiserver-arg=--secure-port=6443.
const (
	apiserverArgPrefix         = "--apiserver-arg="
	controllerManagerArgPrefix = "--controller-manager-arg="
	schedulerArgPrefix         = "--scheduler-arg="
)

// How long the controller-manager and scheduler get to stop before the apiserver is stopped under them.
const clientsStopTimeout = 5 * time.Second

type componentArgs struct {
	apiserver, controllerManager, scheduler []string
}

// controlPlaneUsage is printed for --help; launchers probe for it to learn that this binary has the mode.
const controlPlaneUsage = `usage: kube control-plane [--apiserver-arg=FLAG]... [--controller-manager-arg=FLAG]... [--scheduler-arg=FLAG]...
Runs kube-apiserver, kube-controller-manager and kube-scheduler in one process. Each FLAG is one flag of
that component, e.g. --apiserver-arg=--secure-port=6443. The controller-manager and scheduler start once the
apiserver is ready; SIGTERM stops them, then the apiserver.
`

func splitControlPlaneArgs(args []string) (componentArgs, error) {
	var split componentArgs
	for _, arg := range args {
		switch {
		case strings.HasPrefix(arg, apiserverArgPrefix):
			split.apiserver = append(split.apiserver, strings.TrimPrefix(arg, apiserverArgPrefix))
		case strings.HasPrefix(arg, controllerManagerArgPrefix):
			split.controllerManager = append(split.controllerManager, strings.TrimPrefix(arg, controllerManagerArgPrefix))
		case strings.HasPrefix(arg, schedulerArgPrefix):
			split.scheduler = append(split.scheduler, strings.TrimPrefix(arg, schedulerArgPrefix))
		default:
			return split, fmt.Errorf("unexpected argument %q: every argument is %s..., %s... or %s...",
				arg, apiserverArgPrefix, controllerManagerArgPrefix, schedulerArgPrefix)
		}
	}
	return split, nil
}

func parseComponentFlags(component string, named cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	for _, name := range named.Order {
		fs.AddFlagSet(named.FlagSets[name])
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s takes no positional arguments, got %q", component, fs.Args())
	}
	return nil
}

func runControlPlane() int {
	for _, arg := range os.Args[1:] {
		if arg == "--help" || arg == "-h" {
			fmt.Print(controlPlaneUsage)
			return 0
		}
	}
	logs.InitLogs()
	defer logs.FlushLogs()
	if err := runControlPlaneComponents(os.Args[1:]); err != nil {
		klog.ErrorS(err, "control plane failed")
		return 1
	}
	return 0
}

// componentExit is what a component's Run returned.
type componentExit struct {
	component string
	err       error
}

func runControlPlaneComponents(args []string) error {
	split, err := splitControlPlaneArgs(args)
	if err != nil {
		return err
	}

	// Options of all three first: the scheduler's constructor adds the shared feature-gate flags, which
	// closes the gates to further registration.
	apiserverOpts := apiserveroptions.NewServerRunOptions()
	apiserverFlags := apiserverOpts.Flags()
	controllerManagerOpts, err := controllermanageroptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	controllerManagerFlags := controllerManagerOpts.Flags(
		controllermanager.KnownControllers(), controllermanager.ControllersDisabledByDefault(), controllermanager.ControllerAliases())
	controllerManagerOpts.ParsedFlags = &controllerManagerFlags
	schedulerOpts := scheduleroptions.NewOptions()

	if err := parseComponentFlags("kube-apiserver", apiserverFlags, split.apiserver); err != nil {
		return err
	}
	if err := parseComponentFlags("kube-controller-manager", controllerManagerFlags, split.controllerManager); err != nil {
		return err
	}
	if err := parseComponentFlags("kube-scheduler", *schedulerOpts.Flags, split.scheduler); err != nil {
		return err
	}

	// The three share one component registry and one set of feature gates.
	registry := apiserverOpts.GenericServerRunOptions.ComponentGlobalsRegistry
	if err := registry.Set(); err != nil {
		return err
	}
	featureGate := registry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(apiserverOpts.Logs, featureGate); err != nil {
		return err
	}
	// The apiserver's loopback clients and the controllers watch deprecated APIs on purpose.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	// Separate contexts so shutdown stops the apiserver's clients before the apiserver.
	apiserverCtx, stopAPIServer := context.WithCancel(context.Background())
	defer stopAPIServer()
	clientsCtx, stopClients := context.WithCancel(context.Background())
	defer stopClients()
	apiserverCtx = klog.NewContext(apiserverCtx, klog.Background().WithName("kube-apiserver"))

	completed, err := apiserverOpts.Complete(apiserverCtx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return errors.Join(errs...)
	}
	featureGate.(featuregate.MutableFeatureGate).AddMetrics()
	registry.AddMetrics()

	exits := make(chan componentExit, 3)
	go func() { exits <- componentExit{"kube-apiserver", apiserver.Run(apiserverCtx, completed)} }()

	controllerManagerCtx := klog.NewContext(clientsCtx, klog.Background().WithName("kube-controller-manager"))
	controllerManagerConfig, err := controllerManagerOpts.Config(controllerManagerCtx,
		controllermanager.KnownControllers(), controllermanager.ControllersDisabledByDefault(), controllermanager.ControllerAliases())
	if err != nil {
		return err
	}
	// The controller-manager gives up when the apiserver is not healthy within 10 s of its start, which a
	// loaded host can exceed while the apiserver boots; start the clients once it is ready.
	if err := waitAPIServerReady(controllerManagerConfig.Client.Discovery().RESTClient(), signals, exits); err != nil {
		return err
	}
	go func() {
		exits <- componentExit{"kube-controller-manager", controllermanager.Run(controllerManagerCtx, controllerManagerConfig.Complete())}
	}()

	schedulerCtx := klog.NewContext(clientsCtx, klog.Background().WithName("kube-scheduler"))
	schedulerConfig, sched, err := scheduler.Setup(schedulerCtx, schedulerOpts)
	if err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	go func() { exits <- componentExit{"kube-scheduler", scheduler.Run(schedulerCtx, schedulerConfig, sched)} }()

	select {
	case exit := <-exits:
		// Any component returning on its own is a failure: the others cannot do their job without it.
		return fmt.Errorf("%s stopped: %v", exit.component, exit.err)
	case received := <-signals:
		klog.InfoS("stopping the control plane", "signal", received)
	}
	go func() {
		<-signals
		klog.InfoS("second signal, exiting now")
		logs.FlushLogs()
		os.Exit(1)
	}()
	stopClients()
	stopped := 0
	deadline := time.After(clientsStopTimeout)
	for stopped < 2 {
		select {
		case exit := <-exits:
			if exit.component == "kube-apiserver" {
				return fmt.Errorf("kube-apiserver stopped: %v", exit.err)
			}
			stopped++
		case <-deadline:
			klog.InfoS("controller-manager and scheduler did not stop in time; stopping the apiserver anyway")
			stopped = 2
		}
	}
	stopAPIServer()
	for exit := range exits {
		if exit.component == "kube-apiserver" {
			return exit.err
		}
	}
	return nil
}

// waitAPIServerReady polls the apiserver's /readyz through client until it answers ok; it returns early
// when a signal arrives or a component exits.
func waitAPIServerReady(client rest.Interface, signals <-chan os.Signal, exits <-chan componentExit) error {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case received := <-signals:
			return fmt.Errorf("%v while waiting for the apiserver", received)
		case exit := <-exits:
			return fmt.Errorf("%s stopped: %v", exit.component, exit.err)
		case <-ticker.C:
		}
	}
}
