#[external_call("search")]
fn search(client: &Search, q: String) -> impl Future<Output = Hits> + '_ {
    client.query(q)
}
