// test/browser/journeys.mjs: user journeys in a real browser against the demo shop.
//
//   SHOP_URL=http://localhost:PORT RECEIVER_URL=http://127.0.0.1:PORT node journeys.mjs
//
// Debian's headless Chromium (/usr/bin/chromium, or $CHROMIUM), driven by playwright-core
// (installed with `npm ci` from the committed lock; playwright never downloads a browser
// here), walks the shop as shoppers do and checks what only a browser can show: the click-ID
// cookie is HttpOnly (invisible to document.cookie) and Secure yet kept on
// http://localhost (a secure context for Chromium), it is sent back on the way to checkout,
// and the postback that reaches the receiver carries exactly that journey's click IDs.
//
// Output: one line per check, "ok - ..." or "not ok - ... # why", "# ..." comments, and a
// last line "RESULT {json}" with the order IDs and click IDs, which
// test/t/090_browser_journeys.pl turns into TAP and completes with database checks.
// Every wait is bounded; the browser is closed whatever happens.
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';

const SHOP = process.env.SHOP_URL;
const RECEIVER = process.env.RECEIVER_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!SHOP || !RECEIVER) {
  console.error('usage: SHOP_URL=... RECEIVER_URL=... node journeys.mjs');
  process.exit(2);
}

let failures = 0;
function check(cond, what, why = '') {
  if (cond) console.log(`ok - ${what}`);
  else {
    failures++;
    console.log(`not ok - ${what}${why ? ' # ' + String(why).replace(/\n/g, ' ') : ''}`);
  }
  return cond;
}
const note = (s) => console.log(`# ${s}`);

// An Affilae click ID: a 24-hex ObjectId whose first 8 digits are its Unix time.
function clickId(secondsAgo) {
  const t = Math.floor(Date.now() / 1000) - secondsAgo;
  return t.toString(16).padStart(8, '0') + randomBytes(8).toString('hex');
}

async function receiverRequests() {
  const res = await fetch(`${RECEIVER}/__requests`);
  return res.json();
}
const headerOf = (req, name) =>
  (req.headers.find(([k]) => k.toLowerCase() === name.toLowerCase()) || [])[1];
const queryOf = (req) => Object.fromEntries(new URLSearchParams(req.query));

// Waits (bounded) until the receiver has `count` requests matching `pred`.
async function waitRequests(pred, count, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  let found = [];
  while (Date.now() < deadline) {
    found = (await receiverRequests()).filter(pred);
    if (found.length >= count) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return found;
}

async function cookieNamed(context, name) {
  return (await context.cookies(SHOP)).find((c) => c.name === name);
}
async function listed(page, cls) {
  return page.locator(`#clicks li.${cls}`).allTextContents();
}

// Lands, goes to checkout by the link, places an order; returns the order id.
async function placeOrder(page, amount, customer) {
  await page.click('#go-checkout');
  await page.waitForURL(`${SHOP}/checkout`);
  await page.fill('input[name=amount]', amount);
  await page.fill('input[name=customer]', customer);
  await Promise.all([page.waitForURL(/\/orders\/\d+$/), page.click('#place-order')]);
  return (await page.textContent('#order-id')).trim();
}

async function adminAction(page, action) {
  await Promise.all([page.waitForURL(/\/orders\/\d+$/), page.click(`#${action} button`)]);
  return (await page.textContent('#order-status')).trim();
}

const result = { orders: {}, clicks: {} };
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // playwright gives every launch a new, empty --user-data-dir of its own (in $TMPDIR);
  // the rest keeps Chromium from calling out of this machine.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000,
});

try {
  note(`chromium ${browser.version()}, shop ${SHOP}, receiver ${RECEIVER}`);

  // ---- Journey 1: two affiliate clicks, then a sale; meanwhile another shopper, with
  // a browser of her own, clicks another link and buys first: each postback carries only
  // its own journey's click IDs.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    const ua = await page.evaluate(() => navigator.userAgent);
    const a1 = clickId(2 * 86400);
    const a2 = clickId(60);
    result.clicks.two = [a1, a2];
    result.user_agent = ua;

    const r1 = await page.goto(`${SHOP}/?aecid=${a1}`);
    check(r1.status() === 200, 'landing page with a first aecid answers 200', r1.status());
    const setCookie = await r1.headerValue('set-cookie');
    note(`Set-Cookie: ${setCookie}`);
    check(/HttpOnly/i.test(setCookie || '') && /Secure/i.test(setCookie || ''),
      'the click ID comes in a Set-Cookie header with HttpOnly and Secure', setCookie);
    let c = await cookieNamed(context, 'aecid');
    check(c !== undefined,
      'Chromium keeps the Secure cookie on http://localhost (a secure context)',
      'no aecid cookie stored: Chromium refused a Secure cookie over http');
    check(c && c.value === a1, 'the cookie holds the first click ID', c && c.value);
    check(c && c.httpOnly === true, 'the cookie is HttpOnly', JSON.stringify(c));
    check(c && c.secure === true, 'the cookie is Secure', JSON.stringify(c));
    check(c && c.sameSite === 'Lax', 'the cookie is SameSite=Lax', c && c.sameSite);
    check(c && c.path === '/', 'the cookie is for the whole site (Path=/)', c && c.path);
    check(c && c.expires > Date.now() / 1000 + 86400, 'the cookie is persistent (Max-Age)', c && c.expires);
    const visible = await page.evaluate(() => document.cookie);
    check(!visible.includes('aecid') && !visible.includes(a1),
      'document.cookie cannot see it (HttpOnly)', visible);

    // The other shopper lands between the two clicks.
    const context2 = await browser.newContext();
    const page2 = await context2.newPage();
    page2.setDefaultTimeout(20000);
    const b1 = clickId(3600);
    result.clicks.one = [b1];
    await page2.goto(`${SHOP}/?aecid=${b1}`);
    const c2 = await cookieNamed(context2, 'aecid');
    check(c2 && c2.value === b1, 'another browser has a cookie of its own', c2 && c2.value);

    await page.goto(`${SHOP}/?aecid=${a2}`);
    c = await cookieNamed(context, 'aecid');
    check(c && c.value === `${a1}-${a2}`, 'a second click adds its ID to the cookie', c && c.value);
    check(JSON.stringify(await listed(page, 'aecid')) === JSON.stringify([a1, a2]),
      'the landing page lists both click IDs', await listed(page, 'aecid'));

    // She buys first.
    const orderB = await placeOrder(page2, '15.00', 'customer-2002');
    result.orders.one_click = orderB;
    await adminAction(page2, 'validate');

    const orderId = await placeOrder(page, '120.00', 'customer-2001');
    result.orders.two_clicks = orderId;
    check((await page.textContent('#order-aecid')).trim() === `${a1}-${a2}`,
      'the cookie went along to checkout: the order carries both click IDs',
      await page.textContent('#order-aecid'));
    check(!(await page.evaluate(() => document.cookie)).includes('aecid'),
      'still invisible to scripts after navigation');
    c = await cookieNamed(context, 'aecid');
    check(c && c.value === `${a1}-${a2}`, 'the cookie survives navigation to checkout', c && c.value);
    check(await adminAction(page, 'validate') === 'validated', 'the administrator validates the order');

    const got = await waitRequests((r) => r.path === '/affilae/' && queryOf(r).id === orderId, 1);
    check(got.length === 1, 'exactly one Affilae postback for the order', `got ${got.length}`);
    if (got.length >= 1) {
      const q = queryOf(got[0]);
      note(`postback: ${got[0].method} ${got[0].path}?${got[0].query.replace(/key=[^&]*/, 'key=***')}`);
      check(got[0].method === 'GET', 'the postback is a GET', got[0].method);
      check(q.cids === `${a1}-${a2}`, 'its cids are exactly the two clicks of this journey', q.cids);
      check(Number(q.amount) === 120 && q.currency === 'EUR', 'amount and currency of the order',
        `${q.amount} ${q.currency}`);
      check(/^[0-9a-f]{24}-[0-9a-f]{24}$/.test(q.key || ''), 'the conversion key is sent');
      check(headerOf(got[0], 'x-ae-d-ua') === ua, 'x-ae-d-ua is the browser user agent',
        headerOf(got[0], 'x-ae-d-ua'));
      check(headerOf(got[0], 'x-ae-d-ip') === '127.0.0.1', 'x-ae-d-ip is the browser address',
        headerOf(got[0], 'x-ae-d-ip'));
      check((headerOf(got[0], 'referer') || '').startsWith(`${SHOP}/checkout`),
        'Referer is the page the order was placed from', headerOf(got[0], 'referer'));
    }
    const gotB = await waitRequests((r) => r.path === '/affilae/' && queryOf(r).id === orderB, 1);
    check(gotB.length === 1 && queryOf(gotB[0]).cids === b1,
      'the other shopper\'s postback carries exactly her one click ID',
      gotB.map((r) => queryOf(r).cids).join(','));
    c = await cookieNamed(context, 'aecid');
    check(c && c.value === `${a1}-${a2}`, 'the first shopper\'s cookie was not touched by the other\'s visit',
      c && c.value);
    await context2.close();
    await context.close();
  }

  // ---- Journey 2: an invalid click ID: the page works, nothing is attributed.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    const r = await page.goto(`${SHOP}/?aecid=not-a-valid-click-id`);
    check(r.status() === 200, 'a landing page with an invalid aecid still answers 200', r.status());
    check(await page.locator('.notice.invalid-click').count() === 1,
      'it shows a notice that the click ID was not accepted');
    check(await cookieNamed(context, 'aecid') === undefined, 'and sets no cookie');
    const orderId = await placeOrder(page, '35.50', 'customer-2003');
    result.orders.invalid = orderId;
    check((await page.textContent('#order-aecid')).trim() === '', 'the order carries no click ID');
    check(await adminAction(page, 'validate') === 'validated', 'checkout and validation work all the same');
    await context.close();
  }

  // ---- Journey 3: an order cancelled before validation.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    const d1 = clickId(7200);
    result.clicks.cancelled = [d1];
    await page.goto(`${SHOP}/?aecid=${d1}`);
    const orderId = await placeOrder(page, '80.00', 'customer-2004');
    result.orders.cancelled = orderId;
    check(await adminAction(page, 'cancel') === 'cancelled', 'the administrator cancels the order');
    check(await page.locator('#validate').count() === 0, 'a cancelled order offers no validation');
    await context.close();
  }

  // ---- Journey 4: a Swaarm user: clkid cookie, register and purchase app events.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    const clk = `clk-${randomBytes(6).toString('hex')}`;
    result.swaarm_user = clk;
    await page.goto(`${SHOP}/?clkid=${clk}`);
    const c = await cookieNamed(context, 'clkid');
    check(c && c.value === clk && c.httpOnly && c.secure, 'the Swaarm clkid is kept in an HttpOnly, Secure cookie',
      JSON.stringify(c));
    await Promise.all([page.waitForURL(`${SHOP}/app/events`), page.click('#register button')]);
    check((await page.textContent('#event')).includes('register'), 'the app records the registration');
    await page.goto(`${SHOP}/`);
    await page.fill('#purchase input[name=amount]', '4.99');
    await page.fill('#purchase input[name=txn]', `T-${clk}`);
    await Promise.all([page.waitForURL(`${SHOP}/app/events`), page.click('#purchase button')]);
    check((await page.textContent('#event')).includes('purchase'), 'the app records the purchase');

    const got = await waitRequests((r) => r.path === '/swaarm/postback' && queryOf(r).user_id === clk, 2);
    const events = got.map((r) => queryOf(r).event_id).sort();
    check(JSON.stringify(events) === JSON.stringify(['purchase', 'register']),
      'Swaarm got a register and a purchase postback for this user', JSON.stringify(events));
    const purchase = got.find((r) => queryOf(r).event_id === 'purchase');
    if (purchase) {
      const q = queryOf(purchase);
      check(Number(q.sale_amount) === 4.99 && q.sale_amount_currency === 'EUR',
        'the purchase carries its amount and currency', `${q.sale_amount} ${q.sale_amount_currency}`);
      check(headerOf(purchase, 'authorization') === 'demo-swaarm-s2s-token' && !('s2s_token' in q),
        'the token travels in the Authorization header, not in the URL');
    }

    // The same user orders on the website: the orders trigger sends a Swaarm "order" event.
    await page.goto(`${SHOP}/`);
    const orderId = await placeOrder(page, '25.00', 'customer-2005');
    result.orders.swaarm = orderId;
    check((await page.textContent('#order-clkid')).trim() === clk, 'the web order carries the clkid');
    await adminAction(page, 'validate');
    const web = await waitRequests((r) => r.path === '/swaarm/postback' && queryOf(r).user_id === clk
      && queryOf(r).event_id === 'order', 1);
    check(web.length === 1 && Number(queryOf(web[0]).sale_amount) === 25,
      'validating it sends one Swaarm "order" event with its amount',
      web.map((r) => r.query).join(' | '));
    await context.close();
  }
} catch (e) {
  check(false, 'the journeys ran to the end', e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e);
} finally {
  await browser.close();
}

console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(failures ? 1 : 0);
