//! What the server answers over HTTP besides gRPC on the same port:
//! gRPC-web (tonic-web: browsers), CORS for the origins the operator names,
//! and the web page at `/` when asked for.

use std::path::PathBuf;

use axum::response::IntoResponse;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The page's files compiled into a binary: (path without the leading
/// slash, bytes).
pub type EmbeddedFiles = &'static [(&'static str, &'static [u8])];

/// The web page a server serves at `/`.
#[derive(Debug, Clone)]
pub enum WebPage {
    /// The files of a folder (index.html at its top).
    Dir(PathBuf),
    /// Files compiled into the binary.
    Embedded(EmbeddedFiles),
}

/// HTTP settings beyond gRPC: which other origins' pages may call the
/// server, and the page to serve.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins (`scheme://host[:port]`) whose pages may call the server;
    /// `*` for any. Empty: same origin only (no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// The page served at `/`, or none (then `/` is not found).
    pub web: Option<WebPage>,
}

/// A bad HTTP setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A --cors-origin that is not an origin.
    #[error(
        "--cors-origin {0:?} is not an origin: give scheme://host[:port] (for example http://localhost:8080), or * for any"
    )]
    Origin(String),
    /// A --web folder without index.html.
    #[error("--web {0}: no index.html there (build the page with scripts/build-web.sh, or name its folder)")]
    NoIndex(PathBuf),
}

impl HttpOptions {
    /// Checks the settings (origins well formed, page folder with an index).
    pub fn check(&self) -> Result<(), HttpError> {
        for o in &self.cors_origins {
            parse_origin(o)?;
        }
        if let Some(WebPage::Dir(dir)) = &self.web
            && !dir.join("index.html").is_file()
        {
            return Err(HttpError::NoIndex(dir.clone()));
        }
        Ok(())
    }

    /// The CORS layer for the named origins, or None for same origin only.
    pub(crate) fn cors(&self) -> Result<Option<CorsLayer>, HttpError> {
        if self.cors_origins.is_empty() {
            return Ok(None);
        }
        let origin = if self.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                self.cors_origins.iter().map(|o| parse_origin(o)).collect::<Result<Vec<_>, _>>()?,
            )
        };
        let h = HeaderName::from_static;
        Ok(Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
                .allow_headers([
                    header::CONTENT_TYPE,
                    h("x-grpc-web"),
                    h("x-user-agent"),
                    h("grpc-timeout"),
                    h("grpc-accept-encoding"),
                ])
                .expose_headers([
                    h("grpc-status"),
                    h("grpc-message"),
                    h("grpc-status-details-bin"),
                    h("retry-after-ms"),
                    h("ppdnn-refresh"),
                ]),
        ))
    }
}

/// An origin: scheme http or https, a host, an optional port, no path.
fn parse_origin(o: &str) -> Result<HeaderValue, HttpError> {
    let bad = || HttpError::Origin(o.to_string());
    if o == "*" {
        return Ok(HeaderValue::from_static("*"));
    }
    let uri: Uri = o.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/");
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || !bare || o.ends_with('/') {
        return Err(bad());
    }
    HeaderValue::from_str(o).map_err(|_| bad())
}

/// Refuses (415) a call to a gRPC path whose content type is not gRPC's or
/// gRPC-web's. Without this, an HTTP/2 POST with a "simple" content type
/// (text/plain), which a page of any origin may send without a CORS
/// preflight, would reach the service (tonic does not check it), so CORS
/// would not decide which pages may call the server.
pub(crate) async fn grpc_content_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !grpc {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "gRPC or gRPC-web content types only").into_response();
    }
    next.run(request).await
}

/// Makes the page cross-origin isolated (COOP same-origin, COEP
/// require-corp): the browser then lets its Web Workers share memory, which
/// the threaded client needs to spread its work over several workers. The
/// page's own files are same-origin; its gRPC-web calls to another server
/// are CORS requests, which COEP admits. No other origin may frame it.
pub(crate) async fn isolate_page(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    const ISOLATION: [(&str, &str); 4] = [
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-embedder-policy", "require-corp"),
        ("cross-origin-resource-policy", "same-origin"),
        // No other site may frame the page (and trick its user into clicks).
        ("content-security-policy", "frame-ancestors 'self'"),
    ];
    let mut response = next.run(request).await;
    for (name, value) in ISOLATION {
        response.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}

/// The content type of a page file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Serves the embedded files: `/` is index.html; anything else not there
/// is 404.
pub(crate) async fn embedded(files: EmbeddedFiles, uri: Uri) -> axum::response::Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match files.iter().find(|(name, _)| *name == path) {
        Some((name, bytes)) => {
            ([(header::CONTENT_TYPE, content_type(name)), (header::CACHE_CONTROL, "no-cache")], *bytes)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for good in ["http://localhost:8080", "https://ppdnn.example", "*", "http://127.0.0.1:1"] {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        for bad in ["localhost:8080", "ftp://x", "http://x/page", "http://x/", "", "http://"] {
            let err = parse_origin(bad).unwrap_err();
            assert!(err.to_string().contains("scheme://host[:port]"), "{bad}: {err}");
        }
    }

    #[test]
    fn content_types_cover_the_page() {
        assert_eq!(content_type("ppdnn_web_bg.wasm"), "application/wasm");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("worker.js"), "text/javascript; charset=utf-8");
    }
}
