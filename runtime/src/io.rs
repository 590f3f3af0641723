//! Selftime's I/O thread: a small tokio runtime of its own, on a thread of
//! its own, where the connections of measured clients live.
//!
//! A dependency's answer is data in a socket. Which thread notices it, and
//! when, depends on the runtime that socket and its connection task belong
//! to: the one current when the connection was opened. On the service's own
//! runtime, a busy worker notices the answer only when it gets to it, so the
//! answer waits (in the socket, then in the connection task, then in the run
//! queue), and a call measured there would bill that wait to the dependency. Opened with
//! this runtime current, the socket is read and the response parsed here, on
//! a thread that does nothing else, as soon as the answer arrives; the
//! connection task then wakes the handler's task, and that wake is when a
//! wake-mode call ends. The wait from there to the handler's next poll is the
//! process's own backlog.
//!
//! The runtime starts at its first use. Under tokio's paused clock (with the
//! `test-util` feature) it is never used: time there is the test's, and the
//! I/O thread's timers would not follow it.

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::runtime::Handle;

/// The I/O runtime's handle; `None` where it could not be started (no thread
/// could be spawned), in which case calls run where they are.
fn handle() -> Option<&'static Handle> {
    static IO: OnceLock<Option<Handle>> = OnceLock::new();
    #[cfg(feature = "test-util")]
    if crate::clock::tokio_paused() {
        return None;
    }
    IO.get_or_init(start).as_ref()
}

fn start() -> Option<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("selftime-io")
        .build()
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("selftime-io".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .ok()?;
    Some(handle)
}

/// Runs `f` with selftime's I/O runtime as the current tokio runtime, so that
/// the sockets it opens and the tasks it spawns live on the I/O thread.
///
/// The `tower` client layers and the `reqwest` middleware do this for every
/// call they measure (a call inside a handler), and `#[external_call(…,
/// wake)]` for every poll of its call. Use it
/// for a client whose connections are opened ahead of its calls, such as a
/// tonic `Channel` (`connect_lazy` spawns the channel's worker at once):
///
/// ```no_run
/// # fn demo() {
/// # struct Endpoint; impl Endpoint { fn connect_lazy(&self) {} }
/// # let endpoint = Endpoint;
/// let channel = selftime::io::enter(|| endpoint.connect_lazy());
/// # }
/// ```
///
/// Tasks spawned in `f` run on the I/O thread, which has one thread: keep CPU
/// work out of it. Under tokio's paused clock (`test-util`), `f` runs where it
/// is.
pub fn enter<R>(f: impl FnOnce() -> R) -> R {
    match handle() {
        Some(io) => {
            let _entered = io.enter();
            f()
        }
        None => f(),
    }
}

/// Polls `fut` with selftime's I/O runtime as the current tokio runtime (see
/// [`enter`]): for a client whose connection is opened by a future, such as
/// a Redis multiplexed connection.
///
/// ```no_run
/// # async fn open() -> u32 { 1 }
/// # async fn demo() {
/// let connection = selftime::io::run(open()).await;
/// # }
/// ```
pub fn run<F: Future>(fut: F) -> OnIoThread<F> {
    OnIoThread { inner: fut }
}

pin_project! {
    /// A future polled with selftime's I/O runtime current: see [`run`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct OnIoThread<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for OnIoThread<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.project().inner;
        enter(|| inner.poll(cx))
    }
}

/// Runs `fut` on the I/O thread, as a task of its own, where there is one;
/// else (under tokio's paused clock) where it is polled. For the `tower`
/// client layers: a buffered client (a tonic `Channel`) hands a request to
/// its worker and its response future back to the caller, and a caller on a
/// busy worker would notice neither in time. Run here, the call's future
/// sees its answer the moment it arrives, and its task's end wakes the
/// caller then.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn offload<F>(fut: F) -> Offload<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match handle() {
        Some(io) => Offload::Spawned {
            task: Task(io.spawn(fut)),
        },
        None => Offload::Here { fut },
    }
}

impl<F: Future> Offload<F> {
    /// `fut`, polled where it is.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn here(fut: F) -> Self {
        Self::Here { fut }
    }
}

/// A task on the I/O thread that is aborted when its caller lets go of it:
/// a cancelled call stops there too.
pub(crate) struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Task").field(&self.0.id()).finish()
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pin_project! {
    /// See [`offload`].
    #[project = OffloadProj]
    pub(crate) enum Offload<F: Future> {
        Spawned { task: Task<F::Output> },
        Here { #[pin] fut: F },
    }
}

impl<F: Future + std::fmt::Debug> std::fmt::Debug for Offload<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawned { task } => f.debug_struct("Spawned").field("task", task).finish(),
            Self::Here { fut } => f.debug_struct("Here").field("fut", fut).finish(),
        }
    }
}

impl<F: Future> Future for Offload<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            OffloadProj::Spawned { task } => {
                match std::task::ready!(Pin::new(&mut task.0).poll(cx)) {
                    Ok(out) => Poll::Ready(out),
                    // The call's own panic, carried over to its caller as if it
                    // had run there.
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    // Only dropping the task aborts it, and the I/O runtime is
                    // never shut down: a task cannot be cancelled under a caller
                    // still waiting on it.
                    Err(_) => Poll::Pending,
                }
            }
            OffloadProj::Here { fut } => fut.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A call's panic reaches its caller as if the call had run there.
    #[test]
    fn a_panic_on_the_io_thread_reaches_the_caller() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(super::offload(async { panic!("the call's own bug") }));
        }));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the call's own bug"));
    }

    /// A call its caller lets go of stops on the I/O thread too.
    #[test]
    fn a_dropped_call_is_aborted_on_the_io_thread() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(Arc::clone(&dropped));
        let call = super::offload(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        assert!(matches!(call, super::Offload::Spawned { .. }));
        drop(call);
        for _ in 0..1_000 {
            if dropped.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the task on the I/O thread was not dropped");
    }

    /// What `enter` spawns runs on the I/O thread (and so do the connection
    /// tasks a client spawns there).
    #[test]
    fn tasks_spawned_inside_enter_run_on_the_io_thread() {
        let name = super::enter(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            tokio::spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            rx
        })
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
        assert_eq!(name.as_deref(), Some("selftime-io"));
    }
}
