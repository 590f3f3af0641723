trait Api {
    #[selftime::timed_handler]
    fn checkout(&self) -> u32;
}

struct Real;

impl Api for Real {
    fn checkout(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Real.checkout();
}
