//! A tonic server whose every RPC is a handler, and a tonic client whose
//! every call is an external call, on a loopback port.
//!
//! ```text
//! cargo run --example grpc
//! ```
//!
//! Each RPC's span (`/shop.Cart/Checkout`, with `rpc.method` and the six
//! figures) and the calling handler's (`checkout`, whose breakdown shows
//! `cart=…`) are printed as they close. The service is the one the tests
//! run, generated from `tests/proto/shop.proto`.

#[path = "../tests/proto/shop.rs"]
#[allow(unreachable_pub, clippy::pedantic)]
#[rustfmt::skip] // as the generator wrote it
mod shop;

use selftime::tower::{HandlerLayer, HttpExternalLayer, HttpExternalService};
use shop::cart_client::CartClient;
use shop::cart_server::{Cart, CartServer};
use shop::{CheckoutReply, CheckoutRequest, TrackRequest, TrackUpdate};
use std::error::Error;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::sleep;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tower::Layer as _;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;

    // The server: every RPC a handler, named after its method.
    let server = Server::builder()
        .layer(HandlerLayer::grpc())
        .add_service(CartServer::new(Shop))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);

    // The client: every call an external call to `cart`, until its response ends.
    let channel = Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let cart = CartClient::new(HttpExternalLayer::new("cart").layer(channel));

    println!("{}", checkout(cart).await?);
    Ok(())
}

#[selftime::timed_handler]
async fn checkout(mut cart: CartClient<HttpExternalService<Channel>>) -> Result<String, Status> {
    let request = CheckoutRequest {
        cart: "cart-42".to_owned(),
    };
    Ok(cart.checkout(request).await?.into_inner().order)
}

#[selftime::external_call("inventory")]
async fn reserve_items() {
    sleep(Duration::from_millis(20)).await;
}

struct Shop;

#[tonic::async_trait]
impl Cart for Shop {
    async fn checkout(
        &self,
        request: Request<CheckoutRequest>,
    ) -> Result<Response<CheckoutReply>, Status> {
        reserve_items().await;
        let order = format!("order for {}", request.into_inner().cart);
        Ok(Response::new(CheckoutReply { order }))
    }

    type TrackStream =
        Pin<Box<dyn futures::Stream<Item = Result<TrackUpdate, Status>> + Send + 'static>>;

    async fn track(
        &self,
        _request: Request<TrackRequest>,
    ) -> Result<Response<Self::TrackStream>, Status> {
        Err(Status::unimplemented("this example only checks out"))
    }
}
