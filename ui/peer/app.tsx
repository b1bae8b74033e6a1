// The peer's page: search and fetch, transfers, my files (add, publish, rename, download),
// status and the live log. Everything live through the event stream; no reloads. Rendered
// first by the peer (render.tsx), then hydrated in the browser (main.tsx).
import { useEffect, useRef, useState } from "preact/hooks";
import { answerOf, api, bytes, clock, duration, useEvents, useInterval } from "../common/client.ts";
import { useFirstAnswer } from "../common/first_answers.ts";
import { shortId } from "../../shared/short_id.ts";
import { LiveLog, Notice, Pager } from "../common/widgets.tsx";
import type {
  CatalogVersion,
  FilesPage,
  RepoFile,
  SearchAnswer,
  StatusAnswer,
  TransfersSnapshot,
} from "../../peer/answers.ts";

const PAGE = 20;

/** The API paths whose answers the page comes with (peer/ui_server.ts asks for them). */
export const FIRST_PATHS = {
  status: "/api/status",
  logs: "/api/logs",
  files: `/api/files?offset=0&limit=${PAGE}`,
} as const;

/** The peer's page. */
export function App() {
  // The first render shows the status the page came with, on the server and in the browser.
  const embedded = useFirstAnswer<StatusAnswer>(FIRST_PATHS.status);
  const [status, setStatus] = useState(embedded);
  const [error, setError] = useState<string | undefined>();
  const [filesVersion, setFilesVersion] = useState(0);
  const [live, setLive] = useState(true);

  const loadStatus = () =>
    api<StatusAnswer>(FIRST_PATHS.status).then((s) => {
      setStatus(s);
      setError(undefined);
    }).catch((e: Error) => setError(e.message));
  useEffect(() => {
    if (embedded === undefined) loadStatus();
  }, []);
  useInterval(loadStatus, 10_000);
  const filesChanged = () => setFilesVersion((v) => v + 1);
  useEvents({
    open: () => setLive(true),
    lost: () => setLive(false),
    published: filesChanged,
    unpublished: filesChanged,
    "files-changed": filesChanged,
    "fetch-ended": () => {
      filesChanged();
      loadStatus();
    },
  });
  const act = (p: Promise<unknown>) =>
    p.then(() => setError(undefined)).catch((e: Error) => setError(e.message));

  return (
    <>
      <header class="top">
        <h1>lanshare</h1>
        <StatusLine status={status} live={live} />
      </header>
      {error && <Notice kind="error" onClose={() => setError(undefined)}>{error}</Notice>}
      <main class="grid">
        <SearchPanel act={act} />
        <TransfersPanel status={status} act={act} reload={loadStatus} />
        <FilesPanel version={filesVersion} act={act} maxFileSize={status?.limits.maxFileSize} />
        <StatusPanel status={status} />
        <LiveLog />
      </main>
    </>
  );
}

function StatusLine(props: { status: StatusAnswer | undefined; live: boolean }) {
  const [connectedNow, setConnectedNow] = useState<boolean | undefined>();
  useEvents({ transfers: (d) => setConnectedNow((d as TransfersSnapshot).connected) });
  const s = props.status;
  if (!s) return <p class="muted">connecting…</p>;
  const connected = connectedNow ?? s.connected;
  return (
    // The benchmark times the first paint of this line (Element Timing): the first data shown,
    // at the top of the page, where every window size shows it.
    <p class="status-line" elementtiming="first-data">
      <span class={`dot ${connected ? "ok" : "bad"}`} aria-hidden="true" />
      {connected ? `index ${s.server}` : "no index server"}
      {connected && s.serverRttMs !== null && ` · ${s.serverRttMs} ms`} · {s.hostname}:{s.p2pPort}
      {!props.live && <span class="bad">· live updates lost, retrying</span>}
    </p>
  );
}

function SearchPanel(props: { act: (p: Promise<unknown>) => void }) {
  const [query, setQuery] = useState("");
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<SearchAnswer | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  useEffect(() => {
    // Search as you type, once the typing pauses.
    const timer = setTimeout(() => {
      const params = new URLSearchParams({ q: query, offset: String(offset), limit: String(PAGE) });
      api<SearchAnswer>(`/api/search?${params}`).then((p) => {
        setPage(p);
        setProblem(undefined);
      }).catch((e: Error) => setProblem(e.message));
    }, 150);
    return () => clearTimeout(timer);
  }, [query, offset]);
  const fetchVersion = (fname: string, version: CatalogVersion, several: boolean) =>
    props.act(api("/api/fetch", several ? { fname, hash: version.rootHash } : { fname }));
  return (
    <section class="card search" aria-labelledby="search-title">
      <h2 id="search-title">Search the LAN</h2>
      <input
        type="search"
        placeholder="file name, or a glob like *.iso"
        value={query}
        aria-label="search files"
        onInput={(e) => {
          setQuery((e.target as HTMLInputElement).value);
          setOffset(0);
        }}
      />
      {problem && <Notice kind="error">{problem}</Notice>}
      {page && page.groups.length === 0 && (
        <p class="empty">
          {query
            ? `No file matches “${query}”. Try a shorter name or a glob such as *${query}*.`
            : "No files published on the LAN yet: add one under My files, or start another peer."}
        </p>
      )}
      <ul class="results">
        {page?.groups.map((g) => (
          <li class="result">
            <div class="result-name">{g.fname}</div>
            {g.versions.length > 1 && (
              <div class="muted">{g.versions.length} different contents under this name</div>
            )}
            {g.versions.map((v) => (
              <div class="version">
                <span>{bytes(v.size)}</span>
                <code title={v.rootHash}>{v.rootHash.slice(0, 12)}</code>
                <span>
                  {v.liveSources} live source{v.liveSources === 1 ? "" : "s"}
                  {v.completeSources < v.hosts.length &&
                    ` (${v.hosts.length - v.completeSources} partial)`}
                </span>
                <button
                  type="button"
                  onClick={() => fetchVersion(g.fname, v, g.versions.length > 1)}
                  aria-label={`fetch ${g.fname} ${v.rootHash.slice(0, 12)}`}
                  disabled={v.liveSources === 0}
                >
                  Fetch
                </button>
              </div>
            ))}
          </li>
        ))}
      </ul>
      {page && (
        <Pager
          offset={page.offset}
          limit={PAGE}
          shown={page.entries.length}
          total={page.total}
          capped={page.capped}
          onPage={setOffset}
        />
      )}
    </section>
  );
}

function TransfersPanel(
  props: {
    status: StatusAnswer | undefined;
    act: (p: Promise<unknown>) => void;
    reload: () => void;
  },
) {
  // Transfers change several times a second: only this panel listens, and renders again.
  const [transfers, setTransfers] = useState<TransfersSnapshot | undefined>();
  useEvents({ transfers: (d) => setTransfers(d as TransfersSnapshot) });
  const running = transfers?.progress ?? props.status?.progress ?? [];
  const uploads = transfers?.uploads ?? props.status?.uploads ?? [];
  const slots = transfers?.slots ?? props.status?.slots;
  const partials = (props.status?.partials ?? []).filter((p) =>
    !running.some((r) => r.fname === p.fname)
  );
  const history = props.status?.history ?? [];
  const cancel = (fname: string) =>
    props.act(api("/api/cancel", { fname }).then(() => props.reload()));
  return (
    <section class="card transfers" aria-labelledby="transfers-title">
      <h2 id="transfers-title">Transfers</h2>
      {running.length === 0 && partials.length === 0 && history.length === 0 && (
        <p class="empty">No transfers yet: search above and press Fetch.</p>
      )}
      <ul class="transfer-list">
        {running.map((t) => (
          <li class="transfer" data-fname={t.fname}>
            <div class="transfer-head">
              <b>{t.fname}</b>
              <span class="percent">{t.percent.toFixed(1)} %</span>
            </div>
            <progress max={100} value={t.percent} aria-label={`${t.fname} progress`} />
            <div class="muted">
              {bytes(t.doneBytes)} of {bytes(t.size)} · {t.stalledMs > 0
                ? `stalled for ${duration(Math.round(t.stalledMs / 1000))}`
                : `${bytes(t.bytesPerSecond)}/s · ETA ${duration(t.etaSeconds)}`} · {t.sources}{" "}
              source{t.sources === 1 ? "" : "s"}
            </div>
            {Object.keys(t.queuedAt).length > 0 && (
              <div class="muted queued">
                {Object.entries(t.queuedAt).map(([source, position]) =>
                  `queued at ${source}, position ${position}`
                ).join("; ")}
              </div>
            )}
            <ul class="sources">
              {Object.entries(t.bySource).map(([source, n]) => (
                <li>
                  {source}: {bytes(n)}
                </li>
              ))}
            </ul>
            <button type="button" onClick={() => cancel(t.fname)}>Cancel</button>
          </li>
        ))}
        {partials.map((p) => (
          <li class="transfer partial">
            <div class="transfer-head">
              <b>{p.fname}</b>
              <span class="percent">
                {p.pieces === 0 ? 0 : Math.floor(p.verifiedPieces * 100 / p.pieces)} % (paused)
              </span>
            </div>
            <progress max={p.pieces} value={p.verifiedPieces} />
            <button
              type="button"
              onClick={() => props.act(api("/api/fetch", { fname: p.fname, hash: p.rootHash }))}
            >
              Resume
            </button>{" "}
            <button type="button" onClick={() => cancel(p.fname)}>Discard</button>
          </li>
        ))}
      </ul>
      {history.length > 0 && (
        <>
          <h3>Finished</h3>
          <ul class="history">
            {history.slice(0, 10).map((h) => (
              <li class={`transfer ${h.ok ? "done" : "failed"}`} data-fname={h.fname}>
                <div class="transfer-head">
                  <b>{h.fname}</b>
                  <span class="percent">{h.ok ? "100 %" : "failed"}</span>
                </div>
                {h.ok && <progress max={100} value={100} aria-label={`${h.fname} progress`} />}
                <div class="muted">
                  <time>{clock(h.endedAtMs)}</time> {h.ok && h.result
                    ? `${bytes(h.result.size)} in ${(h.result.durationMs / 1000).toFixed(1)} s, ${
                      bytes(h.result.bytesPerSecond)
                    }/s`
                    : h.error}
                </div>
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>Uploads</h3>
      {slots && (
        <p class="muted">
          slots {slots.active}/{slots.max} in use, {slots.queued} queued
        </p>
      )}
      {uploads.length === 0
        ? <p class="empty">Nobody is fetching from this peer right now.</p>
        : (
          <ul>
            {uploads.map((u) => <li key={u.id}>{u.fname} → {u.peer}: {bytes(u.bytes)}</li>)}
          </ul>
        )}
    </section>
  );
}

function FilesPanel(
  props: { version: number; act: (p: Promise<unknown>) => void; maxFileSize: number | undefined },
) {
  const embedded = useFirstAnswer<FilesPage>(FIRST_PATHS.files);
  const [files, setFiles] = useState<RepoFile[]>(embedded?.files ?? []);
  const [total, setTotal] = useState(embedded?.total ?? 0);
  const [offset, setOffset] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [adding, setAdding] = useState<string | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  const [reload, setReload] = useState(0);
  // The first page came with the page: not asked for again as the component starts.
  const hasFirstPage = useRef(embedded !== undefined);
  useEffect(() => {
    if (hasFirstPage.current) {
      hasFirstPage.current = false;
      return;
    }
    api<FilesPage>(`/api/files?offset=${offset}&limit=${PAGE}`)
      .then((r) => {
        setFiles(r.files);
        setTotal(r.total);
      }).catch((e: Error) => setProblem(e.message));
  }, [props.version, offset, reload]);
  const add = async (list: FileList | null) => {
    for (const file of list ?? []) {
      if (props.maxFileSize && file.size > props.maxFileSize) {
        setProblem(`${file.name} is ${bytes(file.size)}, over this peer's --max-file-size`);
        continue;
      }
      setAdding(file.name);
      try {
        // The browser streams the file from disk: it is never read whole into memory here.
        await answerOf(
          await fetch(`/api/files?fname=${encodeURIComponent(file.name)}`, {
            method: "POST",
            body: file,
          }),
        );
        setProblem(undefined);
      } catch (e) {
        setProblem((e as Error).message);
      } finally {
        setAdding(undefined);
      }
    }
    setReload((n) => n + 1);
  };
  return (
    <section class="card files" aria-labelledby="files-title">
      <h2 id="files-title">My files</h2>
      <div
        class={`drop ${dragging ? "over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          add(e.dataTransfer?.files ?? null);
        }}
      >
        <p>Drop files here to add and publish them, or</p>
        <label class="button">
          choose files…
          <input
            type="file"
            multiple
            class="visually-hidden"
            aria-label="add files"
            onChange={(e) => add((e.target as HTMLInputElement).files)}
          />
        </label>
        {adding && <p class="muted">adding {adding}…</p>}
      </div>
      {problem && <Notice kind="error" onClose={() => setProblem(undefined)}>{problem}</Notice>}
      {files.length === 0
        ? <p class="empty">The repository is empty: add a file above, or fetch one.</p>
        : (
          <table class="files-table">
            <thead>
              <tr>
                <th>file</th>
                <th>size</th>
                <th>published as</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {files.map((f) => <FileRow key={f.path} file={f} act={props.act} />)}
            </tbody>
          </table>
        )}
      <Pager offset={offset} limit={PAGE} shown={files.length} total={total} onPage={setOffset} />
    </section>
  );
}

function FileRow(props: { file: RepoFile; act: (p: Promise<unknown>) => void }) {
  const f = props.file;
  const current = f.published[0];
  const [name, setName] = useState(current ?? f.path.slice(f.path.lastIndexOf("/") + 1));
  useEffect(() => setName(current ?? f.path.slice(f.path.lastIndexOf("/") + 1)), [current]);
  const publish = () =>
    props.act(
      current === undefined
        ? api("/api/publish", { lname: f.path, fname: name })
        : api("/api/rename", { fname: current, to: name }),
    );
  return (
    <tr data-path={f.path}>
      <td>
        <a href={`/api/download?path=${encodeURIComponent(f.path)}`} download>{f.path}</a>
      </td>
      <td>{bytes(f.size)}</td>
      <td>
        <input
          value={name}
          aria-label={`name ${f.path} is published as`}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
          onKeyDown={(e) => e.key === "Enter" && publish()}
        />
        {current !== undefined && <span class="badge">published</span>}
      </td>
      <td class="actions">
        {current === undefined || name !== current
          ? <button type="button" onClick={publish}>{current ? "Rename" : "Publish"}</button>
          : (
            <button
              type="button"
              onClick={() => props.act(api("/api/unpublish", { fname: current }))}
            >
              Unpublish
            </button>
          )}
      </td>
    </tr>
  );
}

function StatusPanel(props: { status: StatusAnswer | undefined }) {
  const s = props.status;
  return (
    <section class="card status" aria-labelledby="status-title">
      <h2 id="status-title">Status</h2>
      {!s ? <p class="empty">Loading…</p> : (
        <>
          {!s.connected && <Notice kind="info">{s.index.summary}</Notice>}
          <dl>
            <dt>index server</dt>
            <dd>{s.index.summary}</dd>
            {s.serverId && (
              <>
                <dt>index ID</dt>
                <dd>
                  <code title={s.serverId}>{shortId(s.serverId)}</code>
                </dd>
              </>
            )}
            <dt>round trip</dt>
            <dd>{s.serverRttMs === null ? "–" : `${s.serverRttMs} ms`}</dd>
            <dt>this peer</dt>
            <dd>
              {s.hostname}, P2P port {s.p2pPort}, ID <code title={s.id}>{shortId(s.id)}</code>
            </dd>
            <dt>repository</dt>
            <dd>
              <code>{s.repo}</code>
            </dd>
            <dt>limits</dt>
            <dd>
              {s.limits.maxSessions} sessions, {s.limits.maxPerPeer} per peer, {s.limits.maxSources}
              {" "}
              sources per fetch
              {s.limits.maxFileSize ? `, files up to ${bytes(s.limits.maxFileSize)}` : ""}
            </dd>
          </dl>
        </>
      )}
    </section>
  );
}
