#[selftime::timed_handler]
async fn ping(conn: &mut Conn) {
    conn.send(b"pong").await;
}
