trait Store {
    #[selftime::external_call("redis")]
    fn get(&self, key: &str) -> Option<u32>;
}

struct Redis;

impl Store for Redis {
    fn get(&self, _key: &str) -> Option<u32> {
        None
    }
}

fn main() {
    let _ = Redis.get("k");
}
