#[external_call]
fn resolve(host: &str) -> std::io::Result<Vec<IpAddr>> {
    let addrs = (host, 0).to_socket_addrs()?;
    Ok(addrs.map(|a| a.ip()).collect())
}
