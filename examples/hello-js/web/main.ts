// hello-js's UI: lists and creates items through the extension's own API (via the host's apiproxy), shows
// whether the install's secret is set, and calls the allowlisted service through the handler.
import { HostBridge } from './bridge';

interface Item {
  id: string;
  text: string;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const host = new HostBridge();

function showError(error: unknown): void {
  $('error').textContent = error instanceof Error ? error.message : String(error);
}

function render(items: Item[]): void {
  const list = $<HTMLUListElement>('items');
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement('li');
    li.textContent = item.text;
    li.dataset.id = item.id;
    return li;
  }));
  list.dataset.count = String(items.length);
}

async function refresh(): Promise<void> {
  render((await host.callJson<{ items: Item[] }>('/items')).items);
}

function add(): void {
  const input = $<HTMLInputElement>('text');
  host.callJson('/items', { method: 'POST', json: { text: input.value } })
    .then(() => { input.value = ''; $('error').textContent = ''; return refresh(); })
    .catch(showError);
}

$('add-button').addEventListener('click', add);
$<HTMLInputElement>('text').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') add();
});

$('ping').addEventListener('click', () => {
  host.callJson<{ status: number }>('/fetch', { method: 'POST', json: { url: 'https://httpbin.org/get' } })
    .then((body) => { $('service').textContent = `HTTP ${body.status}`; })
    .catch((error: unknown) => { $('service').textContent = error instanceof Error ? error.message : String(error); });
});

host.ready
  .then(async () => {
    new ResizeObserver(() => host.resize(document.body.getBoundingClientRect().height)).observe(document.body);
    const secret = await host.callJson<{ key: string; present: boolean; length: number }>('/secret');
    $('secret').textContent = `secret ${secret.key}: ${secret.present ? `${secret.length} characters` : 'not set'}`;
    await refresh();
    document.body.dataset.state = 'ready';
  })
  .catch(showError);
