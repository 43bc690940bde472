// Console helpers for the browser tests: log in as the bootstrap admin of `usher demo --json` (choosing a
// new password, as the first login requires), and accept the console's confirmation dialogs.

export const NEW_PASSWORD = 'browser-test-password-1';

/** Logs `page` into the console as `admin`; on the first login chooses NEW_PASSWORD. */
export async function loginConsole(page, server, { screenshot } = {}) {
  if (!server.admin_password && !server.console_password) throw new Error('usher demo printed no admin_password (not a fresh data dir?)');
  page.on('dialog', (d) => d.accept());
  await page.goto(server.base + '/admin/login');
  await page.fill('input[name=name]', 'admin');
  await page.fill('input[name=password]', server.console_password || server.admin_password);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/admin(\/password)?$/, { timeout: 15000 });
  if (new URL(page.url()).pathname === '/admin/password') {
    if (screenshot) await screenshot('02-password');
    await page.fill('input[name=current_password]', server.admin_password);
    await page.fill('input[name=new_password]', NEW_PASSWORD);
    await page.fill('input[name=confirm_password]', NEW_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/admin$/, { timeout: 15000 });
    server.console_password = NEW_PASSWORD;
  }
}
