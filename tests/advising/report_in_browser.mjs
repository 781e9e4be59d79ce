// Opens a report in headless Chromium (Debian's, through playwright-core) and prints what the page did
// as one JSON object: console errors, page errors, every network request, and for each chart element
// whether ECharts drew it and with how many data points and SVG shapes. Used by test_report.py.
// usage: node report_in_browser.mjs REPORT.html SCREENSHOT.png USER_DATA_DIR CHROMIUM
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';

const [report, screenshot, userDataDir, executablePath] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run'],
});
const result = { consoleErrors: [], pageErrors: [], requests: [], charts: [] };
try {
  const page = context.pages()[0] ?? await context.newPage();
  const url = pathToFileURL(report).href;
  page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') result.consoleErrors.push(msg.text()); });
  page.on('pageerror', (err) => result.pageErrors.push(String(err)));
  page.on('request', (req) => { if (req.url() !== url) result.requests.push(req.url()); });
  await page.goto(url, { waitUntil: 'load' });
  result.charts = await page.evaluate(() => Array.from(document.querySelectorAll('[data-chart]')).map((el) => {
    const instance = window.echarts ? window.echarts.getInstanceByDom(el) : undefined;
    const series = instance ? instance.getOption().series : [];
    return {
      key: el.dataset.chart,
      empty: el.dataset.empty === 'true',
      text: el.textContent,
      drawn: Boolean(instance),
      points: series.reduce((n, s) => n + (s.data || []).filter((d) => d !== null && !(Array.isArray(d) && d[d.length - 1] === null)).length, 0),
      shapes: el.querySelectorAll('svg path, svg rect').length,
      width: el.getBoundingClientRect().width,
      height: el.getBoundingClientRect().height,
    };
  }));
  result.header = await page.evaluate(() => Object.fromEntries(Array.from(document.querySelectorAll('header dl div')).map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await context.close();
}
console.log(JSON.stringify(result));
