#[external_call("redis")]
async fn get_session(redis: &Client, id: &str) -> Option<Session> {
    let raw = redis.get(id).await?;
    Session::decode(&raw)
}
