//! `sluice-bench-bare ADDRESS BODY_FILE CONTENT_TYPE`: answers every request, whatever its
//! method and path, with 200, the given content type and the bytes of BODY_FILE.
//!
//! The request body is read to the end first, as Sluice reads it, so that both servers do the
//! same socket work; nothing else happens per request.

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(path), Some(content_type)) = (args.next(), args.next(), args.next())
    else {
        eprintln!("usage: sluice-bench-bare ADDRESS BODY_FILE CONTENT_TYPE");
        std::process::exit(2);
    };
    let body = Bytes::from(std::fs::read(&path)?);
    let content_type: &'static str = Box::leak(content_type.into_boxed_str());
    let app = axum::Router::new().fallback(move |_request: Bytes| {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, content_type)], body).into_response() }
    });
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
