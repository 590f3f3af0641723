// A future under a name the attribute cannot see through would be timed
// only while it is built: an error, which no lint level silences.
#![allow(warnings)]

#[selftime::timed_handler]
fn spawn_lookup() -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async { 7 })
}

fn main() {
    drop(spawn_lookup);
}
