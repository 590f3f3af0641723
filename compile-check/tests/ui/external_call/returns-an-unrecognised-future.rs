// A future under a name the attribute cannot recognise would be timed only
// while it is built: an error at the return type says what to write instead,
// and `allow(deprecated)` does not silence it.
#![allow(deprecated)]

trait Fetch {
    type Future: std::future::Future<Output = u32>;
    fn fetch(&self) -> Self::Future;
}

struct Backend;

impl Fetch for Backend {
    type Future = std::future::Ready<u32>;

    #[selftime::external_call("backend")]
    fn fetch(&self) -> Self::Future {
        std::future::ready(7)
    }
}

fn main() {
    drop(Backend.fetch());
}
