// The server's dashboard: live peers (discover, ping), the catalogue, stats with a chart of the
// last minutes, and the live log. Pages come from the server: never the whole table. Rendered
// first by the server (render.tsx), then hydrated in the browser (main.tsx).
import { useEffect, useState } from "preact/hooks";
import { api, bytes, clock, useEvents } from "../common/client.ts";
import { useFirstAnswer } from "../common/first_answers.ts";
import { usePage } from "../common/use_page.ts";
import { LiveLog, Notice, Pager } from "../common/widgets.tsx";
import type {
  CataloguePage,
  DiscoverAnswer,
  PeersPage,
  PingAnswer,
  StatsAnswer,
  StatsWithSamples,
} from "../../server/answers.ts";

const PAGE = 25;

/** A table's page of rows, as the page asks for it. */
function pagePath(table: "peers" | "files", query: string, offset: number): string {
  const params = new URLSearchParams({ q: query, offset: String(offset), limit: String(PAGE) });
  return `/api/${table}?${params}`;
}

/** The API paths whose answers the page comes with (server/ui_server.ts asks for them). */
export const FIRST_PATHS = {
  stats: "/api/stats",
  logs: "/api/logs",
  peers: pagePath("peers", "", 0),
  files: pagePath("files", "", 0),
} as const;

/** The dashboard. */
export function App() {
  // The first render already has the stats the page came with, on the server and in the
  // browser: the tables' first pages come with it too (their key holds the entry count).
  const embedded = useFirstAnswer<StatsWithSamples>(FIRST_PATHS.stats);
  const [samples, setSamples] = useState<readonly StatsAnswer[]>(() =>
    embedded === undefined ? [] : embedded.samples.length > 0 ? embedded.samples : [embedded]
  );
  const [peersVersion, setPeersVersion] = useState(0);
  const [error, setError] = useState<string | undefined>();
  const [live, setLive] = useState(true);
  useEffect(() => {
    if (embedded !== undefined) return;
    api<StatsWithSamples>(FIRST_PATHS.stats).then((s) =>
      setSamples(s.samples.length > 0 ? s.samples : [s])
    ).catch((e: Error) => setError(e.message));
  }, []);
  useEvents({
    open: () => setLive(true),
    lost: () => setLive(false),
    stats: (d) => setSamples((s) => [...s.slice(-599), d as StatsAnswer]),
    peers: () => setPeersVersion((v) => v + 1),
  });
  const latest = samples.at(-1);
  // Tables reload when peers join or leave, and when the number of entries moves (a publish).
  const changes = `${peersVersion}:${latest?.entries ?? 0}`;
  return (
    <>
      <header class="top">
        <h1>lanshare server</h1>
        {/* The benchmark times the first paint of this line (Element Timing): the first data */}
        {/* shown, at the top of the page, where every window size shows it. */}
        <p class="status-line" elementtiming={latest ? "first-data" : undefined}>
          <span class={`dot ${live ? "ok" : "bad"}`} aria-hidden="true" />
          {latest ? `${latest.sessions} peers · ${latest.entries} entries` : "connecting…"}
          {!live && <span class="bad">· live updates lost, retrying</span>}
        </p>
      </header>
      {error && <Notice kind="error" onClose={() => setError(undefined)}>{error}</Notice>}
      <main class="grid">
        <StatsPanel samples={samples} />
        <PeersPanel version={changes} />
        <CataloguePanel version={changes} />
        <LiveLog />
      </main>
    </>
  );
}

/** Lookups per second between consecutive samples. */
function rates(samples: readonly StatsAnswer[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const seconds = Math.max((b.timeMs - a.timeMs) / 1000, 0.001);
    out.push(Math.max(0, (b.lookups - a.lookups) / seconds));
  }
  return out;
}

function StatsPanel(props: { samples: readonly StatsAnswer[] }) {
  const latest = props.samples.at(-1);
  const lookupRates = rates(props.samples);
  const rate = lookupRates.at(-1) ?? 0;
  return (
    <section class="card stats" aria-labelledby="stats-title">
      <h2 id="stats-title">Stats</h2>
      {!latest ? <p class="empty">Loading…</p> : (
        <>
          <div class="tiles">
            <div class="tile">
              <b data-stat="sessions">{latest.sessions}</b> sessions
              <small>{latest.here} on this server</small>
            </div>
            <div class="tile">
              <b data-stat="entries">{latest.entries}</b> entries
            </div>
            <div class="tile">
              <b>{rate.toFixed(1)}</b> lookups/s
            </div>
            <div class="tile">
              <b>{bytes(latest.memory.rss)}</b> memory
              <small>heap {bytes(latest.memory.heapUsed)}</small>
            </div>
          </div>
          <Chart
            series={[
              { name: "lookups/s", values: lookupRates, cls: "s1" },
              { name: "sessions", values: props.samples.map((s) => s.sessions), cls: "s2" },
            ]}
            from={props.samples[0]!.timeMs}
            to={latest.timeMs}
          />
        </>
      )}
    </section>
  );
}

function Chart(
  props: { series: { name: string; values: number[]; cls: string }[]; from: number; to: number },
) {
  const width = 600;
  const height = 120;
  const lines = props.series.map((s) => {
    const max = Math.max(1, ...s.values);
    const step = width / Math.max(1, s.values.length - 1);
    const points = s.values.map((v, i) =>
      `${(i * step).toFixed(1)},${(height - 4 - v / max * (height - 8)).toFixed(1)}`
    ).join(" ");
    return { ...s, max, points };
  });
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label="lookups per second and sessions over the last minutes"
      >
        {lines.map((l) => <polyline key={l.name} class={l.cls} points={l.points} />)}
      </svg>
      <figcaption>
        {lines.map((l) => (
          <span class={`legend ${l.cls}`}>
            {l.name} (max {l.max.toFixed(l.name === "sessions" ? 0 : 1)})
          </span>
        ))}
        <span class="muted">
          {clock(props.from)}–{clock(props.to)}
        </span>
      </figcaption>
    </figure>
  );
}

/** A table card's title with its search field (server-side filtering, typed as you go). */
function SearchHead(props: {
  id: string;
  title: string;
  placeholder: string;
  label: string;
  query: string;
  onQuery: (query: string) => void;
}) {
  return (
    <div class="card-head">
      <h2 id={props.id}>{props.title}</h2>
      <input
        type="search"
        placeholder={props.placeholder}
        aria-label={props.label}
        value={props.query}
        onInput={(e) => props.onQuery((e.target as HTMLInputElement).value)}
      />
    </div>
  );
}

function PeersPanel(props: { version: string }) {
  const [query, setQuery] = useState("");
  const [offset, setOffset] = useState(0);
  const [answers, setAnswers] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string | undefined>();
  const data = usePage<PeersPage>(
    FIRST_PATHS.peers,
    pagePath("peers", query, offset),
    props.version,
    query,
    100,
    setProblem,
  );
  const ask = async (kind: "ping" | "discover", hostname: string) => {
    const key = `${kind}:${hostname}`;
    setAnswers((a) => ({ ...a, [key]: `${kind}…` }));
    try {
      if (kind === "ping") {
        const r = await api<{ sessions: PingAnswer[] }>("/api/ping", { hostname });
        const text = r.sessions.map((s) =>
          `${s.address}: ${
            s.rttMs === null ? `no answer (${s.rttError})` : `RTT ${s.rttMs} ms`
          }; ` +
          `P2P port ${s.port} ${s.p2pOpen ? `open (${s.connectMs} ms)` : `closed (${s.p2pError})`}`
        ).join(" · ");
        setAnswers((a) => ({ ...a, [key]: text }));
        setProblem(undefined);
      } else {
        const r = await api<{ sessions: DiscoverAnswer[] }>("/api/discover", { hostname });
        const text = r.sessions.map((s) =>
          `${s.files.length} file(s) (${s.source}): ` +
          (s.files.map((f) => `${f.fname} ${bytes(f.size)}`).join(", ") || "none")
        ).join(" · ");
        setAnswers((a) => ({ ...a, [key]: text }));
      }
    } catch (e) {
      setAnswers((a) => ({ ...a, [key]: (e as Error).message }));
    }
  };
  return (
    <section class="card peers" aria-labelledby="peers-title">
      <SearchHead
        id="peers-title"
        title="Peers"
        placeholder="filter by hostname"
        label="filter peers by hostname"
        query={query}
        onQuery={(q) => {
          setQuery(q);
          setOffset(0);
        }}
      />
      {problem && <Notice kind="error">{problem}</Notice>}
      {data && data.peers.length === 0 && (
        <p class="empty">
          {query
            ? `No live peer's hostname contains “${query}”.`
            : "No peer is connected. Start one with `make peer` (it finds this server by broadcast) or `--server HOST:PORT`."}
        </p>
      )}
      {data && data.peers.length > 0 && (
        <div class="table-wrap">
          <table class="peers-table">
            <thead>
              <tr>
                <th>hostname</th>
                <th>address</th>
                <th>since</th>
                <th>files</th>
                <th>last RTT</th>
                <th>state</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {data.peers.map((p) => (
                <>
                  <tr data-host={p.hostname}>
                    <td>{p.hostname}</td>
                    <td>
                      {p.address}:{p.port}
                    </td>
                    <td>{clock(p.openedAtMs)}</td>
                    <td>{p.files}</td>
                    <td>{p.lastRttMs === null ? "–" : `${p.lastRttMs} ms`}</td>
                    <td>{p.here ? "live" : `via ${p.serverId.slice(0, 8)}`}</td>
                    <td class="actions">
                      <button type="button" onClick={() => ask("discover", p.hostname)}>
                        Discover
                      </button>{" "}
                      <button type="button" onClick={() => ask("ping", p.hostname)}>Ping</button>
                    </td>
                  </tr>
                  {(answers[`ping:${p.hostname}`] || answers[`discover:${p.hostname}`]) && (
                    <tr class="answer" data-answer-for={p.hostname}>
                      <td colSpan={7}>
                        {answers[`ping:${p.hostname}`] && (
                          <div class="ping-answer">{answers[`ping:${p.hostname}`]}</div>
                        )}
                        {answers[`discover:${p.hostname}`] && (
                          <div class="discover-answer">{answers[`discover:${p.hostname}`]}</div>
                        )}
                      </td>
                    </tr>
                  )}
                </>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && (
        <Pager
          offset={offset}
          limit={PAGE}
          shown={data.peers.length}
          total={data.total}
          onPage={setOffset}
        />
      )}
    </section>
  );
}

function CataloguePanel(props: { version: string }) {
  const [query, setQuery] = useState("");
  const [offset, setOffset] = useState(0);
  const [problem, setProblem] = useState<string | undefined>();
  const data = usePage<CataloguePage>(
    FIRST_PATHS.files,
    pagePath("files", query, offset),
    props.version,
    query,
    150,
    setProblem,
  );
  return (
    <section class="card catalogue" aria-labelledby="catalogue-title">
      <SearchHead
        id="catalogue-title"
        title="Catalogue"
        placeholder="name, or a glob like *.iso"
        label="search the catalogue"
        query={query}
        onQuery={(q) => {
          setQuery(q);
          setOffset(0);
        }}
      />
      {problem && <Notice kind="error">{problem}</Notice>}
      {data && data.entries.length === 0 && (
        <p class="empty">
          {query
            ? `No entry matches “${query}”.`
            : "The catalogue is empty: peers publish files here."}
        </p>
      )}
      {data && data.entries.length > 0 && (
        <div class="table-wrap">
          <table class="catalogue-table">
            <thead>
              <tr>
                <th>name</th>
                <th>size</th>
                <th>hash</th>
                <th>peer</th>
              </tr>
            </thead>
            <tbody>
              {data.entries.map((e) => (
                <tr data-fname={e.fname}>
                  <td>
                    {e.fname}
                    {e.have !== undefined && <span class="badge">partial</span>}
                  </td>
                  <td>{bytes(e.size)}</td>
                  <td>
                    <code title={e.rootHash}>{e.rootHash.slice(0, 12)}</code>
                  </td>
                  <td>
                    {e.hostname}:{e.port}
                    {!e.online && <span class="badge">offline</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && (
        <Pager
          offset={offset}
          limit={PAGE}
          shown={data.entries.length}
          total={data.total}
          capped={data.capped}
          onPage={setOffset}
        />
      )}
    </section>
  );
}
