#[selftime::external_call("redis", future)]
async fn get() -> Option<String> {
    None
}

fn main() {
    drop(get());
}
