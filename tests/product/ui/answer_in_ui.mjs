// Answers a paused staged-upgrade flow run through the Prefect UI's resume form, as an approver would.
// usage: node answer_in_ui.mjs <flow-run-url> <approve|reject> <approver> <comment> <screenshot.png>
import { chromium } from 'playwright-core';

const [url, decision, approver, comment, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(url);
  await page.getByRole('button', { name: 'Resume' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Approver').first().waitFor();
  // The approver sees the stage report (markdown) above the form.
  const report = await dialog.innerText();
  if (decision === 'approve') {
    await dialog.locator('[role=switch]').first().click();
  }
  const boxes = dialog.locator('textarea');
  await boxes.nth(0).fill(approver);
  await boxes.nth(1).fill(comment);
  await page.screenshot({ path: screenshot, fullPage: true });
  await dialog.getByRole('button', { name: 'Submit' }).click();
  await dialog.waitFor({ state: 'detached', timeout: 15000 });
  console.log(JSON.stringify({ report }));
} finally {
  await browser.close();
}
