#[selftime::timed_handler]
mod handlers {
    pub fn checkout() {}
}

fn main() {
    handlers::checkout();
}
