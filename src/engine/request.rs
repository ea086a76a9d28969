//! Builds each request from the plan's [`RequestSpec`]: static parts are
//! cloned (cheap, reference-counted), templated parts rendered into a buffer
//! the worker reuses.
use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;

use crate::plan::{BodySpec, RequestSpec};

static X_API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");

/// Per-worker scratch space, reused request after request.
#[derive(Default)]
pub struct Scratch {
    text: String,
}

/// Renders request `index`, then signs it (SigV4) when the plan says so, as
/// of now: the signed time is the send time. Fails only when a rendered
/// template is not a valid URI or header value (the plan checked the static
/// parts already).
pub fn build(
    spec: &RequestSpec,
    index: u64,
    scratch: &mut Scratch,
) -> Result<Request<Full<Bytes>>, String> {
    let uri: Uri = match &spec.static_uri {
        Some(uri) => uri.clone(),
        None => {
            scratch.text.clear();
            spec.url.render_into(index, &mut scratch.text);
            scratch
                .text
                .parse()
                .map_err(|_| "rendered URL is not valid".to_string())?
        }
    };
    let body = match &spec.body {
        BodySpec::Empty => Bytes::new(),
        BodySpec::Static(bytes) => bytes.clone(),
        BodySpec::Templated(template) => {
            scratch.text.clear();
            template.render_into(index, &mut scratch.text);
            Bytes::copy_from_slice(scratch.text.as_bytes())
        }
    };
    // A reference-counted handle: the signer hashes the body it sends.
    let signed_body = spec.signer.as_ref().map(|_| body.clone());
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = spec.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = spec.static_headers.clone();
    for (name, template) in &spec.templated_headers {
        scratch.text.clear();
        template.render_into(index, &mut scratch.text);
        let value = HeaderValue::from_str(&scratch.text)
            .map_err(|_| format!("rendered header {name} is not valid"))?;
        request.headers_mut().append(name.clone(), value);
    }
    if let Some(slot) = spec.api_keys.pick(index) {
        request
            .headers_mut()
            .insert(&X_API_KEY, spec.api_keys.values[slot].clone());
    }
    if let (Some(signer), Some(body)) = (&spec.signer, signed_body) {
        signer.sign(&mut request, &body, std::time::SystemTime::now())?;
    }
    Ok(request)
}
