#[selftime::external_call("redis", wake, wake)]
async fn get() {}

fn main() {
    drop(get());
}
