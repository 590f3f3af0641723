struct Api;

#[selftime::timed_handler]
impl Api {
    fn checkout(&self) {}
}

fn main() {
    Api.checkout();
}
