//! Connect to domain 0's port "demo" (waiting up to 30 s for the server);
//! answer its line in capitals. Run in domain 1 (unix backend:
//! `VCHAN_DOMID=1`).
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use vchan::{DomId, Endpoint, Port};

fn main() {
    if let Err(e) = run() {
        eprintln!("client: {e}"); // Display: a sentence, not a Debug dump
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port = Port::new("demo")?;
    let mut client = Endpoint::connect(DomId::new(0)?, &port, Some(Duration::from_secs(30)))?;
    let mut line = String::new();
    BufReader::new(&mut client).read_line(&mut line)?;
    println!("client got: {}", line.trim_end());
    client.write_all(line.to_uppercase().as_bytes())?;
    client.flush()?;
    client.linger()?; // until the server has read it all
    client.close()?;
    Ok(())
}
