#[selftime::external_call("redis")]
struct Redis {
    url: &'static str,
}

fn main() {
    let redis = Redis { url: "redis://" };
    let _ = redis.url;
}
