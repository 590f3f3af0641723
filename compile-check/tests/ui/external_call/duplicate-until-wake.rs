#[selftime::external_call("redis", until_wake, until_wake)]
async fn get() {}

fn main() {
    drop(get());
}
