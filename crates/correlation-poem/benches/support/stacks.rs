//! The poem stacks both benches measure (see `correlation_bench_support::STACKS`).
//!
//! Every stack serves the same handler through a `Route`, adds its middleware with a
//! single `.with` call and is boxed as poem's server boxes it (`Arc<dyn DynEndpoint>`,
//! which boxes each request's future). The no-op stack wraps the route in an endpoint
//! that only calls it; the peer is poem's own `RequestId` set to reuse incoming IDs, as
//! ours does. Each response's body is read to its end.

use std::hint::black_box;

use correlation_bench_support::{INCOMING_ID, Stack, shared_header_value};
use correlation_poem::Correlation;
use poem::endpoint::BoxEndpoint;
use poem::http::HeaderValue;
use poem::http::header::HOST;
use poem::middleware::{RequestId, ReuseId};
use poem::{Endpoint, EndpointExt, Middleware, Request, Response, Route, get, handler};
use tokio::runtime::Runtime;

use crate::floor::Floor;

/// One poem stack on its runtime.
pub(crate) struct Poem {
    runtime: Runtime,
    app: BoxEndpoint<'static, Response>,
    incoming: HeaderValue,
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// A middleware that only wraps the endpoint.
struct Noop;

impl<E: Endpoint> Middleware<E> for Noop {
    type Output = NoopEndpoint<E>;

    fn transform(&self, inner: E) -> NoopEndpoint<E> {
        NoopEndpoint(inner)
    }
}

struct NoopEndpoint<E>(E);

impl<E: Endpoint> Endpoint for NoopEndpoint<E> {
    type Output = E::Output;

    fn call(&self, request: Request) -> impl Future<Output = poem::Result<E::Output>> + Send {
        self.0.call(request)
    }
}

fn app(name: &str) -> BoxEndpoint<'static, Response> {
    let routes = Route::new().at("/", get(hello));
    match name {
        "bare" => routes.boxed(),
        "no-op" => routes.with(Noop).boxed(),
        "peer" => routes
            .with(RequestId::default().reuse_id(ReuseId::Use))
            .boxed(),
        "floor" => routes.with(Floor).boxed(),
        "ours" => routes.with(Correlation::default()).boxed(),
        other => panic!("unknown stack {other:?}"),
    }
}

impl Stack for Poem {
    type Request = Request;

    fn new(name: &str) -> Self {
        let stack = Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime"),
            app: app(name),
            incoming: shared_header_value(INCOMING_ID),
        };
        let echoes = !matches!(name, "bare" | "no-op");
        stack.runtime.block_on(async {
            for with_id in [false, true] {
                let [request] = <[_; 1]>::try_from(stack.requests(with_id, 1)).unwrap();
                let response = stack.app.get_response(request).await;
                assert!(response.status().is_success(), "{name}");
                let echoed = response.header("x-request-id");
                assert_eq!(echoed.is_some(), echoes, "{name}");
                if with_id && echoes {
                    assert_eq!(echoed, Some(INCOMING_ID), "{name}");
                }
                let body = response.into_body().into_bytes().await.unwrap();
                assert_eq!(body, "hello", "{name}");
            }
        });
        stack
    }

    fn requests(&self, with_id: bool, count: usize) -> Vec<Request> {
        (0..count)
            .map(|_| {
                let request = Request::builder()
                    .uri_str("/")
                    .header(HOST, HeaderValue::from_static("localhost"));
                let request = if with_id {
                    request.header("x-request-id", self.incoming.clone())
                } else {
                    request
                };
                request.finish()
            })
            .collect()
    }

    fn serve(&self, requests: Vec<Request>) -> usize {
        self.runtime.block_on(async {
            let mut read = 0;
            for request in requests {
                let body = self.app.get_response(request).await.into_body();
                read += black_box(body.into_bytes().await.expect("a body")).len();
            }
            read
        })
    }
}
