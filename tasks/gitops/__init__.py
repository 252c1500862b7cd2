"""GitOps: the desired state read from Git, rendered per cluster, applied, pruned and watched until healthy."""
