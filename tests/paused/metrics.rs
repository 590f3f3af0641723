//! The `metrics` feature end to end: handlers run on tokio's paused clock
//! record into a Prometheus exporter's recorder, the exporter serves its page
//! on a loopback port, and the tests scrape it over HTTP and check names,
//! labels, counts, sums and buckets against figures known in advance.
//!
//! Each test has its own recorder, installed as the thread's local recorder
//! around a current-thread runtime (so every handler reports on that thread):
//! tests do not share a global recorder and can run in parallel.

use crate::common::ms;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use selftime::{external_call, timed_handler};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;
use tokio::time::sleep;

// The same handlers as `otel_metrics`', written again on purpose: these run
// with no subscriber (the metrics must not depend on spans), and tracing
// caches each callsite's interest for the whole process, so a callsite
// shared with a module that captures spans could be cached as "never" there
// (tokio-rs/tracing#3611). Each module's handlers are callsites of its own.
#[external_call("redis")]
async fn redis(d: Duration) {
    sleep(d).await;
}

#[external_call("legacy")]
async fn legacy(d: Duration) {
    sleep(d).await;
}

/// redis 0..30 and legacy 20..40 overlap, then 20 of its own: total 60,
/// external 40 (the union), internal 20; redis busy 30, legacy busy 20.
#[timed_handler]
async fn checkout() {
    tokio::join!(redis(ms(30)), async {
        sleep(ms(20)).await;
        legacy(ms(20)).await;
    });
    sleep(ms(20)).await;
}

/// 4 of its own, 3 on redis: total 7, internal 4, external 3.
#[timed_handler]
async fn login(fail: bool) -> Result<(), &'static str> {
    sleep(ms(4)).await;
    redis(ms(3)).await;
    if fail { Err("bad password") } else { Ok(()) }
}

/// No external call at all: total 1, internal 1, external 0.
#[timed_handler]
async fn health() {
    sleep(ms(1)).await;
}

#[timed_handler]
async fn explode() {
    sleep(ms(2)).await;
    panic!("the handler's own bug");
}

#[timed_handler]
async fn stuck() {
    redis(ms(50)).await;
}

#[timed_handler]
async fn inner() {
    redis(ms(10)).await;
}

/// 5 of its own around an inner handler that waits 10 on redis.
#[timed_handler]
async fn outer() {
    sleep(ms(5)).await;
    inner().await;
}

/// A scraped exposition page: each sample's value as written, by
/// `name{labels sorted by key}`.
struct Page {
    text: String,
    samples: BTreeMap<String, String>,
}

impl Page {
    fn parse(text: String) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').expect("labels end with `}`");
                    let mut labels: Vec<(&str, &str)> = rest
                        .split(',')
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("label is k=\"v\"");
                            (k, v.trim_matches('"'))
                        })
                        .collect();
                    labels.sort_unstable();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            samples.insert(key(name, &labels), value.to_owned());
        }
        Self { text, samples }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&str> {
        let mut labels = labels.to_vec();
        labels.sort_unstable();
        self.samples.get(&key(name, &labels)).map(String::as_str)
    }

    /// The sample's value as written; panics with the whole page if there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> &str {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} on the page:\n{}", self.text))
    }

    /// A count (a counter, a histogram's `_count` or bucket): an integer.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let value = self.value(name, labels);
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}{labels:?} = {value:?} is not a count: {e}"))
    }

    /// A number of seconds (a histogram's `_sum`).
    fn seconds(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let value = self.value(name, labels);
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}{labels:?} = {value:?} is not a number: {e}"))
    }

    /// Asserts a histogram's `_count`, `_sum` (seconds, to float precision)
    /// and cumulative buckets `(le, count)`.
    fn assert_histogram(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        count: u64,
        sum: f64,
        buckets: &[(&str, u64)],
    ) {
        let count_name = format!("{name}_count");
        let sum_name = format!("{name}_sum");
        assert_eq!(
            self.count(&count_name, labels),
            count,
            "{name}{labels:?} _count"
        );
        let got = self.seconds(&sum_name, labels);
        assert!(
            (got - sum).abs() <= 1e-12,
            "{name}{labels:?} _sum: got {got}, want {sum}"
        );
        let bucket_name = format!("{name}_bucket");
        for &(le, want) in buckets {
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            assert_eq!(
                self.count(&bucket_name, &with_le),
                want,
                "{name}{labels:?} bucket le={le}"
            );
        }
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn exporter() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("selftime_".into()),
            &selftime::metrics::BUCKETS,
        )
        .expect("buckets are not empty")
}

/// Runs `scenario` on a paused clock with `builder`'s recorder as the local
/// recorder, then serves the exporter's HTTP endpoint and scrapes it.
fn scrape_after<F: Future<Output = ()>>(builder: PrometheusBuilder, scenario: F) -> Page {
    let real = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()));
    // `build` spawns the exporter's upkeep task, so it needs a runtime.
    let (recorder, serve) = {
        let _entered = real.enter();
        builder
            .with_http_listener(address)
            .build()
            .expect("the exporter binds its loopback port")
    };

    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    metrics::with_local_recorder(&recorder, || {
        selftime::metrics::describe();
        paused.block_on(scenario);
    });

    let text = real.block_on(async move {
        tokio::spawn(serve);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        let response = client
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .expect("the exporter answers");
        assert!(response.status().is_success(), "scrape: {response:?}");
        response.text().await.expect("a text page")
    });
    Page::parse(text)
}

const TOTAL: &str = "selftime_total_seconds";
const INTERNAL: &str = "selftime_internal_seconds";
const EXTERNAL: &str = "selftime_external_seconds";
const REQUESTS: &str = "selftime_requests_total";
const BACKLOG: &str = "selftime_backlog_seconds";
const ALL: (&str, &str) = ("dependency", "all");
const REDIS: (&str, &str) = ("dependency", "redis");
const LEGACY: (&str, &str) = ("dependency", "legacy");

const fn h(name: &str) -> (&str, &str) {
    ("handler", name)
}

const fn outcome(name: &str) -> (&str, &str) {
    ("outcome", name)
}

#[test]
fn every_series_has_the_figures_of_the_requests_that_ran() {
    // No subscriber is installed, so every handler span is disabled: the
    // metrics must not depend on it.
    let page = scrape_after(exporter(), async {
        for _ in 0..3 {
            checkout().await;
        }
        login(false).await.unwrap();
        login(false).await.unwrap();
        login(true).await.unwrap_err();
        health().await;
        let panicked = tokio::spawn(explode()).await.unwrap_err();
        assert!(panicked.is_panic());
        tokio::time::timeout(ms(10), stuck()).await.unwrap_err();
    });

    checkout_series(&page);
    login_series(&page);
    health_series(&page);
    explode_and_stuck_series(&page);

    // No call in wake mode, no arrival times: a zero of backlog per run.
    for (handler, runs) in [
        ("checkout", 3),
        ("login", 3),
        ("health", 1),
        ("explode", 1),
        ("stuck", 1),
    ] {
        page.assert_histogram(BACKLOG, &[h(handler)], runs, 0.0, &[("0.0001", runs)]);
    }

    // The `_sum`s add up: total = internal + external{dependency="all"}.
    for handler in ["checkout", "login", "health", "explode", "stuck"] {
        let sum =
            |name: &str, labels: &[(&str, &str)]| page.seconds(&format!("{name}_sum"), labels);
        let parts = sum(INTERNAL, &[h(handler)]) + sum(EXTERNAL, &[h(handler), ALL]);
        assert!(
            (sum(TOTAL, &[h(handler)]) - parts).abs() <= 1e-12,
            "{handler}: total ≠ internal + external"
        );
    }
}

/// 3 × (total 60, internal 20, external 40 = redis 30 ∪ legacy 20).
fn checkout_series(page: &Page) {
    let labels = [h("checkout")];
    page.assert_histogram(
        TOTAL,
        &labels,
        3,
        0.06 * 3.0,
        &[("0.05", 0), ("0.1", 3), ("+Inf", 3)],
    );
    page.assert_histogram(
        INTERNAL,
        &labels,
        3,
        0.02 * 3.0,
        &[("0.01", 0), ("0.025", 3), ("+Inf", 3)],
    );
    page.assert_histogram(
        EXTERNAL,
        &[h("checkout"), ALL],
        3,
        0.04 * 3.0,
        &[("0.025", 0), ("0.05", 3)],
    );
    page.assert_histogram(
        EXTERNAL,
        &[h("checkout"), REDIS],
        3,
        0.03 * 3.0,
        &[("0.025", 0), ("0.05", 3)],
    );
    page.assert_histogram(
        EXTERNAL,
        &[h("checkout"), LEGACY],
        3,
        0.02 * 3.0,
        &[("0.01", 0), ("0.025", 3)],
    );
    assert_eq!(page.count(REQUESTS, &[h("checkout"), outcome("ok")]), 3);
    assert_eq!(page.get(REQUESTS, &[h("checkout"), outcome("error")]), None);
}

/// 3 × (total 7, internal 4, external 3), one of them an error.
fn login_series(page: &Page) {
    let labels = [h("login")];
    page.assert_histogram(TOTAL, &labels, 3, 0.007 * 3.0, &[("0.005", 0), ("0.01", 3)]);
    page.assert_histogram(
        INTERNAL,
        &labels,
        3,
        0.004 * 3.0,
        &[("0.0025", 0), ("0.005", 3)],
    );
    page.assert_histogram(
        EXTERNAL,
        &[h("login"), ALL],
        3,
        0.003 * 3.0,
        &[("0.0025", 0), ("0.005", 3)],
    );
    page.assert_histogram(
        EXTERNAL,
        &[h("login"), REDIS],
        3,
        0.003 * 3.0,
        &[("0.0025", 0), ("0.005", 3)],
    );
    assert_eq!(page.count(REQUESTS, &[h("login"), outcome("ok")]), 2);
    assert_eq!(page.count(REQUESTS, &[h("login"), outcome("error")]), 1);
}

/// No call: `all` holds one zero, and no dependency has a series.
fn health_series(page: &Page) {
    let labels = [h("health")];
    page.assert_histogram(TOTAL, &labels, 1, 0.001, &[("0.001", 1)]);
    page.assert_histogram(INTERNAL, &labels, 1, 0.001, &[("0.001", 1)]);
    page.assert_histogram(EXTERNAL, &[h("health"), ALL], 1, 0.0, &[("0.001", 1)]);
    for dependency in [REDIS, LEGACY] {
        let name = format!("{EXTERNAL}_count");
        assert_eq!(page.get(&name, &[h("health"), dependency]), None);
    }
}

/// explode: 2 of its own, then a panic. stuck: cancelled by the timeout after
/// 10, all of it waiting on redis.
fn explode_and_stuck_series(page: &Page) {
    page.assert_histogram(TOTAL, &[h("explode")], 1, 0.002, &[("0.0025", 1)]);
    page.assert_histogram(INTERNAL, &[h("explode")], 1, 0.002, &[("0.0025", 1)]);
    assert_eq!(page.count(REQUESTS, &[h("explode"), outcome("panic")]), 1);

    page.assert_histogram(TOTAL, &[h("stuck")], 1, 0.01, &[("0.005", 0), ("0.01", 1)]);
    page.assert_histogram(INTERNAL, &[h("stuck")], 1, 0.0, &[("0.001", 1)]);
    page.assert_histogram(EXTERNAL, &[h("stuck"), ALL], 1, 0.01, &[("0.01", 1)]);
    page.assert_histogram(EXTERNAL, &[h("stuck"), REDIS], 1, 0.01, &[("0.01", 1)]);
    assert_eq!(page.count(REQUESTS, &[h("stuck"), outcome("cancelled")]), 1);
}

#[test]
fn described_with_units_help_and_histogram_types() {
    let page = scrape_after(exporter(), async {
        checkout().await;
    });
    for name in [
        "selftime_total_seconds",
        "selftime_internal_seconds",
        "selftime_external_seconds",
        "selftime_backlog_seconds",
    ] {
        assert!(
            page.text.contains(&format!("# TYPE {name} histogram\n")),
            "{name} is not a histogram:\n{}",
            page.text
        );
        assert!(
            page.text.contains(&format!("# HELP {name} ")),
            "{name} has no help text:\n{}",
            page.text
        );
    }
    assert!(
        page.text
            .contains("# TYPE selftime_requests_total counter\n")
    );
    assert!(page.text.contains(
        "# HELP selftime_internal_seconds Time selftime handlers spent on their own work"
    ));
    // Every bucket bound of `BUCKETS`, and no other, on each histogram.
    let les: Vec<&str> = page
        .text
        .lines()
        .filter(|l| l.starts_with("selftime_internal_seconds_bucket{"))
        .map(|l| {
            let start = l.find("le=\"").expect("a bucket has `le`") + 4;
            let end = start + l[start..].find('"').expect("closing quote");
            &l[start..end]
        })
        .collect();
    let mut want: Vec<String> = selftime::metrics::BUCKETS
        .iter()
        .map(ToString::to_string)
        .collect();
    want.push("+Inf".to_owned());
    assert_eq!(les, want);
}

#[test]
fn nested_handlers_each_get_their_own_series() {
    let page = scrape_after(exporter(), async {
        outer().await;
    });
    // inner: 10 on redis, nothing of its own.
    page.assert_histogram(TOTAL, &[h("inner")], 1, 0.01, &[]);
    page.assert_histogram(INTERNAL, &[h("inner")], 1, 0.0, &[]);
    page.assert_histogram(EXTERNAL, &[h("inner"), REDIS], 1, 0.01, &[]);
    // outer: 5 of its own; the inner handler's wait on redis is outer's too.
    page.assert_histogram(TOTAL, &[h("outer")], 1, 0.015, &[]);
    page.assert_histogram(INTERNAL, &[h("outer")], 1, 0.005, &[]);
    page.assert_histogram(EXTERNAL, &[h("outer"), ALL], 1, 0.01, &[]);
    page.assert_histogram(EXTERNAL, &[h("outer"), REDIS], 1, 0.01, &[]);
    for handler in ["inner", "outer"] {
        assert_eq!(page.count(REQUESTS, &[h(handler), outcome("ok")]), 1);
    }
}

#[test]
fn names_already_follow_prometheus_naming_so_recommended_naming_keeps_them() {
    let page = scrape_after(exporter().with_recommended_naming(true), async {
        login(false).await.unwrap();
    });
    // With unit and `_total` suffixes on, the exporter would append them if
    // they were missing; the alert rules rely on the names staying as they are.
    assert_eq!(page.count(REQUESTS, &[h("login"), outcome("ok")]), 1);
    page.assert_histogram(INTERNAL, &[h("login")], 1, 0.004, &[("0.005", 1)]);
    assert!(
        !page.text.contains("_seconds_seconds") && !page.text.contains("_total_total"),
        "a suffix was doubled:\n{}",
        page.text
    );
}

/// Behind `HandlerLayer`, the time the response waited on its reader has a
/// histogram of its own, and internal time does not include it.
#[test]
fn a_slow_readers_time_is_its_own_histogram() {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, ServiceExt as _};
    let page = scrape_after(exporter(), async {
        let service = selftime::tower::HandlerLayer::new("slow_reader").layer(tower::service_fn(
            |_: http::Request<axum::body::Body>| async {
                let chunks = ["a", "b"].map(Ok::<_, std::convert::Infallible>);
                let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
                Ok::<_, std::convert::Infallible>(http::Response::new(body))
            },
        ));
        let request = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let mut body = service.oneshot(request).await.unwrap().into_body();
        // The reader takes 20 before each of its three reads: the two
        // frames, and the end.
        loop {
            sleep(ms(20)).await;
            if body.frame().await.is_none() {
                break;
            }
        }
    });
    let labels = [h("slow_reader")];
    page.assert_histogram(
        "selftime_client_seconds",
        &labels,
        1,
        0.06,
        &[("0.05", 0), ("0.1", 1)],
    );
    page.assert_histogram(TOTAL, &labels, 1, 0.06, &[("0.05", 0), ("0.1", 1)]);
    page.assert_histogram(INTERNAL, &labels, 1, 0.0, &[("0.0001", 1)]);
    assert!(
        page.text
            .contains("# HELP selftime_client_seconds Time the responses")
    );
}

/// A dependency that reports its own time in `Server-Timing` gets a
/// histogram of the time between and one of its own time; one that does
/// not, neither.
#[test]
fn the_time_between_and_the_callees_own_time_have_their_histograms() {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, ServiceExt as _};
    #[selftime::timed_handler]
    async fn pay(reporting: bool) {
        let dep = if reporting { "billing" } else { "ledger" };
        let service = selftime::tower::HttpExternalLayer::new(dep).layer(tower::service_fn(
            move |_: http::Request<axum::body::Body>| async move {
                sleep(ms(15)).await;
                let mut response = http::Response::new(axum::body::Body::empty());
                if reporting {
                    let timing = http::HeaderValue::from_static("total;dur=10");
                    response.headers_mut().insert("server-timing", timing);
                }
                Ok::<_, std::convert::Infallible>(response)
            },
        ));
        let request = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let page = scrape_after(exporter(), async {
        pay(true).await;
        pay(false).await;
    });
    let billing = [h("pay"), ("dependency", "billing")];
    page.assert_histogram(
        "selftime_between_seconds",
        &billing,
        1,
        0.005,
        &[("0.005", 1)],
    );
    page.assert_histogram(
        "selftime_callee_seconds",
        &billing,
        1,
        0.01,
        &[("0.005", 0), ("0.01", 1)],
    );
    page.assert_histogram(EXTERNAL, &billing, 1, 0.015, &[("0.025", 1)]);
    let ledger = key(
        "selftime_between_seconds_count",
        &[h("pay"), ("dependency", "ledger")],
    );
    assert!(!page.text.contains(&ledger), "{}", page.text);
    assert!(
        page.text.contains(
            "# HELP selftime_between_seconds Time selftime handlers' calls spent between"
        )
    );
}
