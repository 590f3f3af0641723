//! A TCP relay nobody instruments, standing for a load balancer or a slow
//! network: the demo's load balancer, and the tests' forwarders (which
//! include this file by path).

use std::net::SocketAddr;
use std::time::Duration;

/// Relays one connection to `upstream`, as a load balancer or a slow
/// network would, instrumented by nobody: the ask as it comes, and each
/// chunk of the answer `delay()` later. `on_passed` hears how long each chunk
/// was held, from its arrival to its being passed on.
pub async fn relay(
    client: tokio::net::TcpStream,
    upstream: SocketAddr,
    delay: impl Fn() -> Duration,
    mut on_passed: impl FnMut(Duration),
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let ask = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let answer = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            let arrived = std::time::Instant::now();
            let wait = delay();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            on_passed(arrived.elapsed());
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(ask, answer);
}
