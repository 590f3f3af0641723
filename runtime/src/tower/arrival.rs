//! When a request reached this process: a listener whose connections note
//! the time each read's data arrived, for `HandlerLayer` to start a
//! handler's total there rather than when a worker got to the request.
//!
//! On Linux the time is the kernel's receive timestamp (`SO_TIMESTAMPNS`),
//! taken when the data reached the host, whatever the process was doing;
//! elsewhere it is the time of the read, which sees the wait from the read
//! to the handler's start but not the wait before the read.

use super::streams::{ClientSide, ServerSide, Streams};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// A TCP listener whose connections note when their requests arrived, so
/// that [`HandlerLayer`](super::HandlerLayer) counts the time a request
/// waited in this process before its handler started (the accept queue, the
/// connection's task, the run queue) in its handler's total and backlog.
///
/// With axum, serve with it and `Arrival` as the connection info:
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # async fn demo() -> std::io::Result<()> {
/// use selftime::tower::{Arrival, ArrivalListener, HandlerLayer};
///
/// let app = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .layer(HandlerLayer::matched_path());
/// let listener = ArrivalListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<Arrival>()).await
/// # }
/// ```
///
/// With tonic (feature `tonic`), serve its `incoming()` connections:
/// `Server::builder().layer(HandlerLayer::grpc()).add_service(…)
/// .serve_with_incoming(listener.incoming())`.
///
/// On Linux the arrival is the kernel's receive timestamp of the request's
/// data; on other systems it is the time the data was read, which leaves
/// out a wait before the read. On an HTTP/2 connection (gRPC), which
/// carries many requests at once, each request's arrival is that of the
/// read that carried its `HEADERS` frame: the connection's frame headers
/// are read as they pass (never the payloads), each read ends with one
/// frame's header (a read's timestamp is its last packet's), and handlers
/// take the arrivals in the order their streams were opened. Under load
/// the kernel may merge small packets waiting in a socket, and a merged
/// packet carries the later arrival: requests queued that way read as
/// having arrived a little later than they did.
#[derive(Debug)]
pub struct ArrivalListener {
    inner: TcpListener,
    nodelay: bool,
}

impl ArrivalListener {
    /// Binds to `addr`, as [`TcpListener::bind`].
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`], and where the receive timestamps cannot be
    /// turned on.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::from_tokio(TcpListener::bind(addr).await?)
    }

    /// Wraps a bound listener.
    ///
    /// # Errors
    ///
    /// Where the receive timestamps cannot be turned on.
    pub fn from_tokio(inner: TcpListener) -> io::Result<Self> {
        timestamps::enable(&inner)?;
        Ok(Self {
            inner,
            nodelay: false,
        })
    }

    /// Sets `TCP_NODELAY` on every connection it accepts (off by default, as
    /// with axum's listener; on for [`incoming`](Self::incoming), as with
    /// tonic's). Use it rather than axum's `tap_io`, whose wrapper hides the
    /// connection from [`Arrival`].
    #[must_use]
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts a connection.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::accept`].
    pub async fn accept(&self) -> io::Result<(ArrivalStream, SocketAddr)> {
        let (stream, remote) = self.inner.accept().await?;
        Ok((self.wrap(stream, remote)?, remote))
    }

    fn wrap(&self, stream: TcpStream, remote: SocketAddr) -> io::Result<ArrivalStream> {
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        ArrivalStream::new(stream, remote)
    }

    #[cfg(feature = "tonic")]
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<ArrivalStream>> {
        let (stream, remote) = ready!(self.inner.poll_accept(cx))?;
        Poll::Ready(self.wrap(stream, remote))
    }

    /// Its connections as a stream, for tonic's `serve_with_incoming`, with
    /// `TCP_NODELAY` set on each, as tonic's own listener sets it.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    #[must_use]
    pub fn incoming(self) -> Incoming {
        // As tonic's own listener does: HTTP/2 writes a response in several
        // frames, which Nagle's algorithm would hold back.
        Incoming {
            listener: self.nodelay(true),
        }
    }
}

/// The connections of an [`ArrivalListener`], as a stream: see
/// [`ArrivalListener::incoming`].
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
#[derive(Debug)]
pub struct Incoming {
    listener: ArrivalListener,
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl futures_core::Stream for Incoming {
    type Item = io::Result<ArrivalStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(Some)
    }
}

/// A connection of an [`ArrivalListener`]: a [`TcpStream`] that notes when
/// the data of each read arrived.
#[derive(Debug)]
pub struct ArrivalStream {
    io: TcpStream,
    arrival: Arrival,
    /// Room for the timestamp's control message, kept between reads.
    control: Vec<u8>,
    /// What the client sent, read for HTTP/2's streams.
    client: ClientSide,
    /// What the server wrote, read for the HTTP/2 streams it answered.
    server: ServerSide,
}

impl ArrivalStream {
    fn new(io: TcpStream, remote: SocketAddr) -> io::Result<Self> {
        timestamps::enable(&io)?;
        Ok(Self {
            io,
            arrival: Arrival {
                shared: Arc::new(Mutex::new(Arrivals::default())),
                remote,
            },
            control: timestamps::control_buffer(),
            client: ClientSide::default(),
            server: ServerSide::default(),
        })
    }

    /// `written` bytes went out: the HTTP/2 streams they answer are no
    /// longer waiting for a handler.
    fn wrote<'a>(&mut self, written: usize, bufs: impl IntoIterator<Item = &'a [u8]>) {
        if !self.client.is_http2() {
            return;
        }
        let mut arrivals = None;
        let mut left = written;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(buf.len());
            left -= n;
            self.server.wrote(&buf[..n], |stream| {
                arrivals
                    .get_or_insert_with(|| self.arrival.lock())
                    .streams
                    .done(stream);
            });
        }
    }

    /// The connection's [`Arrival`]: what `HandlerLayer` reads.
    #[must_use]
    pub fn arrival(&self) -> Arrival {
        self.arrival.clone()
    }
}

/// A connection's arrival times, as the connection info a server inserts
/// into each request's extensions (axum's `ConnectInfo<Arrival>`, tonic's
/// connection info), where [`HandlerLayer`](super::HandlerLayer) finds it.
#[derive(Clone, Debug)]
pub struct Arrival {
    shared: Arc<Mutex<Arrivals>>,
    remote: SocketAddr,
}

impl Arrival {
    /// The peer's address.
    #[must_use]
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Claims the arrival of the request being handed to a handler now. On
    /// HTTP/2, the read that carried the oldest stream no handler has
    /// claimed. Otherwise the first read since the last claim (a request
    /// that follows another on its connection), else the latest read (a
    /// request read together with one before it, pipelined). How long ago
    /// that was, in nanoseconds.
    pub(crate) fn claim_waited(&self) -> u64 {
        let arrived = {
            let mut arrivals = self.lock();
            if arrivals.streams.http2 {
                arrivals.streams.claim().or(arrivals.latest)
            } else {
                arrivals.unclaimed.take().or(arrivals.latest)
            }
        };
        arrived.map_or(0, |at| now_ns().saturating_sub(at))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arrivals> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Times in nanoseconds since the Unix epoch, as the kernel stamps them.
#[derive(Debug, Default)]
struct Arrivals {
    unclaimed: Option<u64>,
    latest: Option<u64>,
    /// An HTTP/2 connection's streams waiting for their handlers.
    streams: Streams,
}

impl Arrivals {
    fn read_at(&mut self, at: u64) {
        self.unclaimed.get_or_insert(at);
        self.latest = Some(at);
    }
}

/// The wall clock, as the kernel's receive timestamps read it; a clock
/// before 1970 reads as 0 (no wait is then found).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().try_into().unwrap_or(u64::MAX))
}

/// The arrival of the request in `extensions` (the connection info of an
/// [`ArrivalListener`]'s connection) claimed: how long it has waited, in
/// nanoseconds; 0 for a request that came another way.
pub(crate) fn waited(extensions: &http::Extensions) -> u64 {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(arrival)) =
        extensions.get::<axum::extract::ConnectInfo<Arrival>>()
    {
        return arrival.claim_waited();
    }
    extensions.get::<Arrival>().map_or(0, Arrival::claim_waited)
}

impl AsyncRead for ArrivalStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Self {
            io,
            arrival,
            control,
            client,
            ..
        } = self.get_mut();
        loop {
            ready!(io.poll_read_ready(cx))?;
            let before = buf.filled().len();
            let read = read_into(io, buf, control, client.read_limit());
            match read {
                Ok((n, stamp)) => {
                    if n > 0 {
                        let at = stamp.unwrap_or_else(now_ns);
                        let mut arrivals = arrival.lock();
                        arrivals.read_at(at);
                        client.read(&buf.filled()[before..], at, &mut arrivals.streams);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

thread_local! {
    /// Each thread's buffer to read into: a server hands its reads an
    /// uninitialized buffer, which safe code would have to zero whole on
    /// every read; this one was zeroed once, and a read copies out only the
    /// bytes it got.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; 16 * 1024].into_boxed_slice());
}

/// One read from `io` into `buf`, of at most `limit` bytes: its length and
/// its arrival time. Through this thread's scratch buffer, else into `buf`
/// itself, zeroed first.
fn read_into(
    io: &TcpStream,
    buf: &mut ReadBuf<'_>,
    control: &mut [u8],
    limit: Option<usize>,
) -> io::Result<(usize, Option<u64>)> {
    let most = limit.map_or(buf.remaining(), |limit| buf.remaining().min(limit));
    let interest = tokio::io::Interest::READABLE;
    let through_scratch = SCRATCH.try_with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            return None;
        };
        let len = most.min(scratch.len());
        let read = io.try_io(interest, || {
            timestamps::recv(io, &mut scratch[..len], control)
        });
        if let Ok((n, _)) = &read {
            buf.put_slice(&scratch[..*n]);
        }
        Some(read)
    });
    if let Ok(Some(read)) = through_scratch {
        return read;
    }
    let unfilled = buf.initialize_unfilled_to(most);
    let read = io.try_io(interest, || timestamps::recv(io, unfilled, control));
    if let Ok((n, _)) = &read {
        buf.advance(*n);
    }
    read
}

impl AsyncWrite for ArrivalStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.wrote(written, [buf]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        this.wrote(written, bufs.iter().map(|buf| &**buf));
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::serve::Listener for ArrivalListener {
    type Io = ArrivalStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match ArrivalListener::accept(self).await {
                Ok(accepted) => return accepted,
                // A connection that failed on its own (reset before the
                // accept): the next one.
                Err(e) if connection_error(&e) => {}
                // Out of descriptors or memory: wait for some to be freed,
                // as axum's own listener does, rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        ArrivalListener::local_addr(self)
    }
}

#[cfg(feature = "axum")]
fn connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, ArrivalListener>>
    for Arrival
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, ArrivalListener>) -> Self {
        stream.io().arrival()
    }
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl tonic::transport::server::Connected for ArrivalStream {
    type ConnectInfo = Arrival;

    fn connect_info(&self) -> Arrival {
        self.arrival()
    }
}

/// The kernel's receive timestamps, where there are any.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod timestamps {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    use std::io::{self, IoSliceMut};
    use std::os::fd::{AsFd, AsRawFd};

    /// Turns on `SO_TIMESTAMPNS` for `socket` (a listener's connections
    /// inherit it; it is set on each again all the same).
    pub(super) fn enable(socket: &impl AsFd) -> io::Result<()> {
        setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
    }

    pub(super) fn control_buffer() -> Vec<u8> {
        nix::cmsg_space!(nix::sys::time::TimeSpec)
    }

    /// One read into `buf`: its length, and the time its data arrived.
    pub(super) fn recv(
        socket: &impl AsRawFd,
        buf: &mut [u8],
        control: &mut [u8],
    ) -> io::Result<(usize, Option<u64>)> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(control),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let mut stamp = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for cmsg in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(at) = cmsg {
                    let secs = u64::try_from(at.tv_sec()).unwrap_or(0);
                    let nanos = u64::try_from(at.tv_nsec()).unwrap_or(0);
                    stamp = Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
                }
            }
        }
        Ok((msg.bytes, stamp))
    }
}

/// No receive timestamps: the time of the read stands for the arrival.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod timestamps {
    use std::io::{self, Read as _};

    pub(super) fn enable<T>(_: &T) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn control_buffer() -> Vec<u8> {
        Vec::new()
    }

    pub(super) fn recv(
        socket: &tokio::net::TcpStream,
        buf: &mut [u8],
        _: &mut [u8],
    ) -> io::Result<(usize, Option<u64>)> {
        let n = socket.try_read(buf)?;
        Ok((n, None))
    }
}
