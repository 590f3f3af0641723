//! A real browser reads the `Server-Timing` header: a page served by a
//! timed axum service over loopback, opened in headless Chromium, whose
//! script reads its own navigation entry's `serverTiming` and writes it into
//! the page, which Chromium prints (`--dump-dom`).
//!
//! Ignored by default so that `cargo test` needs no browser; CI installs
//! Chromium and runs them (`--include-ignored`). Run here with
//! `cargo test --test it browser -- --include-ignored`.

use crate::common::{Capture, Closed, ms};
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use selftime::tower::{Arrival, ArrivalListener, HandlerLayer, ServerTiming};
use serde_json::Value;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The page: once loaded, it writes what the browser made of the header
/// into `#timing`. The navigation entry's `serverTiming` is complete once
/// the entry is (`responseEnd` set), which the `load` handler's own turn
/// may precede, hence the timer and the poll. `isSecureContext` goes with
/// it: outside a secure context `serverTiming` is always empty, which must
/// not pass for an untrusted request's empty list. The `data:` icon keeps
/// the browser from asking for `/favicon.ico`.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>selftime</title></head>
<body><pre id="timing">pending</pre><script>
function report() {
  const nav = performance.getEntriesByType("navigation")[0];
  if (!nav || nav.responseEnd === 0) { setTimeout(report, 10); return; }
  document.getElementById("timing").textContent = JSON.stringify({
    secure: window.isSecureContext,
    entries: nav.serverTiming.map(e => ({name: e.name, duration: e.duration, description: e.description})),
  });
}
window.addEventListener("load", () => setTimeout(report, 0));
</script></body></html>
"#;

/// The page's dependency: 20 ms of waiting, so that `external` is far from
/// zero.
#[selftime::external_call("db")]
async fn query() {
    tokio::time::sleep(ms(20)).await;
}

/// 5 ms of the handler's own work, on the CPU (the handler's `internal`).
fn own_work(how_long: Duration) {
    let start = Instant::now();
    while start.elapsed() < how_long {
        std::hint::spin_loop();
    }
}

async fn page() -> Html<&'static str> {
    query().await;
    own_work(ms(5));
    Html(PAGE)
}

/// Serves the page at `/` on a free loopback port, each request a handler
/// with `Server-Timing` for the requests `policy` trusts, through an
/// `ArrivalListener` (the peer address is what `for_peers` reads).
/// `route_layer`: a request the router does not match is no handler, so
/// each test's spans are the page's.
async fn serve(policy: ServerTiming) -> SocketAddr {
    let app = Router::new()
        .route("/", get(page))
        .route_layer(HandlerLayer::new("page").server_timing(policy));
    let listener = ArrivalListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<Arrival>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// What the page wrote: whether it was a secure context, and its
/// navigation entry's `serverTiming` entries.
struct Seen {
    secure: bool,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    /// Milliseconds.
    duration: f64,
    description: String,
}

/// Opens `http://{addr}/` in headless Chromium, on a blocking thread while
/// this runtime serves the page.
async fn open(addr: SocketAddr) -> Seen {
    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&url))
        .await
        .unwrap();
    let json = written(&dom);
    let value: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("the page wrote no JSON ({e}): {json}"));
    let entries = value["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {value}"))
        .iter()
        .map(|e| Entry {
            name: e["name"].as_str().unwrap().to_owned(),
            duration: e["duration"].as_f64().unwrap(),
            description: e["description"].as_str().unwrap().to_owned(),
        })
        .collect();
    eprintln!("the browser's serverTiming: {json}");
    Seen {
        secure: value["secure"].as_bool().unwrap(),
        entries,
    }
}

/// The text of `#timing` in the DOM Chromium printed.
fn written(dom: &str) -> String {
    const OPEN: &str = r#"<pre id="timing">"#;
    let start = dom
        .find(OPEN)
        .unwrap_or_else(|| panic!("no #timing in what chromium printed: {dom}"))
        + OPEN.len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = &dom[start..end];
    assert_ne!(
        text, "pending",
        "the page's script did not report before the dump: {dom}"
    );
    // A text node as serialised: these three are escaped (`&amp;` last).
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `chromium --headless --dump-dom url`: the DOM once the page has loaded
/// and its timers have run (`--virtual-time-budget`), killed after 60 s.
fn dump_dom(url: &str) -> String {
    let chromium = on_path("chromium").unwrap_or_else(|| {
        panic!(
            "this test opens the page in headless Chromium, and `chromium` is not on PATH: \
             install it (Debian/Ubuntu: `apt-get install chromium`) or run without \
             `--include-ignored`"
        )
    });
    let dir = TempDir::new();
    let out = dir.0.join("dom.html");
    let err = dir.0.join("stderr.txt");
    let mut child = Command::new(chromium)
        // `--no-sandbox`: CI runs as root, where Chromium refuses its sandbox.
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        // A fresh profile: nothing cached from another run or test.
        .arg(format!(
            "--user-data-dir={}",
            dir.0.join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        // Its own process group, so that a timeout ends its helpers too.
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 60 s on {url}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Its stderr is noise (D-Bus and the like) unless it failed.
    assert!(
        status.success(),
        "chromium failed ({status}) on {url}: {}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    std::fs::read_to_string(out).unwrap()
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "selftime-browser-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `count` request spans, once closed: a handler ends when the server
/// has its body's last byte, which may be an instant after the browser is
/// done with the page.
async fn request_spans(capture: &Capture, count: usize) -> Vec<Closed> {
    for _ in 0..500 {
        let spans = capture.named("request");
        if spans.len() >= count {
            assert_eq!(spans.len(), count, "{spans:#?}");
            return spans;
        }
        tokio::time::sleep(ms(10)).await;
    }
    panic!(
        "{count} request spans did not close: {:#?}",
        capture.closed()
    );
}

/// The page's handler did its work: 20 ms waiting on `db`, 5 of its own.
fn assert_did_the_work(span: &Closed) {
    assert_eq!(span.outcome(), "ok", "{span:?}");
    assert_eq!(
        span.field("http.response.status_code"),
        Some("200"),
        "{span:?}"
    );
    let (total, external, internal) = span.figures();
    assert!(external >= 20_000, "{span:?}");
    assert!(internal >= 5_000, "{span:?}");
    assert!(total >= external + internal, "{span:?}");
}

/// `db`'s microseconds in the span's breakdown (`db=20093us/1`).
fn db_us(span: &Closed) -> u64 {
    let breakdown = span.breakdown();
    breakdown
        .strip_prefix("db=")
        .and_then(|rest| rest.strip_suffix("us/1"))
        .and_then(|us| us.parse().ok())
        .unwrap_or_else(|| panic!("not one call to db: {breakdown}"))
}

/// Rounding: each figure is a whole number of µs on both sides, the
/// header's cut from nanoseconds on its own.
const ROUNDING_MS: f64 = 0.005;

fn ms_of(us: u64) -> f64 {
    Duration::from_micros(us).as_secs_f64() * 1000.0
}

// Current-thread runtimes: `Capture` is the test thread's subscriber, so
// the server must run on that thread for its spans to be captured; the
// browser runs on a blocking thread meanwhile.

#[tokio::test]
#[ignore = "needs chromium (apt-get install chromium); CI runs it"]
async fn chromium_reads_the_handlers_figures_from_server_timing() {
    let (capture, _g) = Capture::install();
    let policy = ServerTiming::for_peers(["127.0.0.1/32"])
        .unwrap()
        .with_dependencies();
    let addr = serve(policy).await;

    let seen = open(addr).await;
    let [span] = <[Closed; 1]>::try_from(request_spans(&capture, 1).await).unwrap();
    assert_did_the_work(&span);
    eprintln!(
        "the span's (total, external, internal) µs: {:?}, db {} µs",
        span.figures(),
        db_us(&span)
    );

    assert!(seen.secure, "loopback is a secure context");
    let named: Vec<_> = seen
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.description.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("total", ""),
            ("internal", ""),
            ("external", ""),
            ("dependency", "db")
        ],
        "{:?}",
        seen.entries
    );
    let [h_total, h_internal, h_external, h_db] = [0, 1, 2, 3].map(|i| seen.entries[i].duration);
    let (total, external, internal) = span.figures();
    let why = format!("{:?} against {span:?}", seen.entries);
    // The header is the handler's figures at the response head, the span's
    // at the end of the body. Nothing is called after the head, so
    // `external` and `db` are the same figures on both, to the µs.
    assert!((h_external - ms_of(external)).abs() < ROUNDING_MS, "{why}");
    assert!((h_db - ms_of(db_us(&span))).abs() < ROUNDING_MS, "{why}");
    // At the head, the client has taken nothing yet: total is internal and
    // external.
    assert!(
        (h_total - (h_internal + h_external)).abs() < ROUNDING_MS,
        "{why}"
    );
    // The work came before the head...
    assert!(h_external >= 20.0 && h_internal >= 5.0, "{why}");
    // ...and total and internal go on to the end of the body. How far is
    // not bounded here: usually 0.2 ms, but the head's write wakes the
    // browser, and on a busy machine the server's thread may then wait
    // for a CPU (3 ms, 6 ms, once 39 ms seen on two shared cores). Given
    // the two lines above, the difference is all the handler's own time
    // after the head and the client's.
    assert!(h_total <= ms_of(total) + ROUNDING_MS, "{why}");
    assert!(h_internal <= ms_of(internal) + ROUNDING_MS, "{why}");
}

#[tokio::test]
#[ignore = "needs chromium (apt-get install chromium); CI runs it"]
async fn chromium_sees_no_server_timing_on_an_untrusted_request() {
    let (capture, _g) = Capture::install();
    // A header the browser does not send.
    let policy = ServerTiming::for_header("x-debug-timing", "s3cr3t")
        .unwrap()
        .with_dependencies();
    let addr = serve(policy).await;

    let seen = open(addr).await;
    assert!(seen.secure, "loopback is a secure context");
    assert!(seen.entries.is_empty(), "{:?}", seen.entries);

    // The same service tells a request that does send it: the empty list
    // is the policy's doing.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nhost: test\r\nx-debug-timing: s3cr3t\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let head = response.split("\r\n\r\n").next().unwrap();
    assert!(
        head.lines().any(|line| line
            .to_ascii_lowercase()
            .starts_with("server-timing: total;dur=")),
        "{head}"
    );

    for span in request_spans(&capture, 2).await {
        assert_did_the_work(&span);
    }
}
