//! The actix-web stacks both benches measure (see `correlation_bench_support::STACKS`).
//!
//! Every stack serves the same handler through an `App` built with actix-web's test
//! harness (`init_service`, then `Service::call`) and registers its middleware with a
//! single `.wrap`; the no-op stack wraps actix-web's own `Identity`. The peer is
//! actix-request-identifier set to reuse incoming IDs, as ours does. Each response's body
//! is read to its end, since the middleware also wraps the body.

use std::hint::black_box;

use actix_http::Request;
use actix_request_identifier::{IdReuse, RequestIdentifier};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HOST, HeaderValue};
use actix_web::middleware::Identity;
use actix_web::rt::SystemRunner;
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error, web};
use correlation_actix::Correlation;
use correlation_bench_support::{INCOMING_ID, Stack, shared_bytes};

use crate::floor::Floor;

/// Answers a batch of requests through one app on the system it was built on, whatever the
/// app's type.
type Serve = Box<dyn Fn(&SystemRunner, Vec<Request>) -> usize>;

/// One actix-web stack on its system.
pub(crate) struct Actix {
    system: SystemRunner,
    serve: Serve,
    incoming: HeaderValue,
}

async fn handler() -> &'static str {
    "hello"
}

/// Checks that `app` answers, and echoes the ID if `echoes`; then erases its type.
fn checked<S, B>(system: &SystemRunner, name: &str, app: S, incoming: &HeaderValue) -> Serve
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    let echoes = !matches!(name, "bare" | "no-op");
    for header in [None, Some(incoming)] {
        let mut request = TestRequest::get().uri("/");
        if let Some(value) = header {
            request = request.insert_header(("x-request-id", value.clone()));
        }
        let response = system.block_on(test::call_service(&app, request.to_request()));
        assert!(response.status().is_success(), "{name}");
        let echoed = response.headers().get("x-request-id");
        assert_eq!(echoed.is_some(), echoes, "{name}");
        if echoes && header.is_some() {
            assert_eq!(echoed, header, "{name}");
        }
        assert_eq!(
            system.block_on(test::read_body(response)),
            "hello",
            "{name}"
        );
    }
    Box::new(move |system, requests| {
        system.block_on(async {
            let mut read = 0;
            for request in requests {
                let response = app.call(request).await.expect("a response");
                let (request, response) = response.into_parts();
                let (head, body) = response.into_parts();
                let body = actix_web::body::to_bytes(body).await.ok();
                read += body.as_ref().map_or(0, |body| body.len());
                black_box((request, head, body));
            }
            read
        })
    })
}

impl Stack for Actix {
    type Request = Request;

    fn new(name: &str) -> Self {
        let system = actix_web::rt::System::new();
        let incoming = HeaderValue::from_maybe_shared(shared_bytes(INCOMING_ID))
            .expect("a valid header value");
        let routes = || App::new().route("/", web::get().to(handler));
        // Each stack's app has a type of its own.
        macro_rules! checked {
            ($app:expr) => {
                checked(
                    &system,
                    name,
                    system.block_on(test::init_service($app)),
                    &incoming,
                )
            };
        }
        let serve = match name {
            "bare" => checked!(routes()),
            "no-op" => checked!(routes().wrap(Identity::default())),
            "peer" => checked!(
                routes().wrap(RequestIdentifier::with_uuid().use_incoming_id(IdReuse::UseIncoming))
            ),
            "floor" => checked!(routes().wrap(Floor)),
            "ours" => checked!(routes().wrap(Correlation::default())),
            other => panic!("unknown stack {other:?}"),
        };
        Self {
            system,
            serve,
            incoming,
        }
    }

    fn requests(&self, with_id: bool, count: usize) -> Vec<Request> {
        (0..count)
            .map(|_| {
                // A `Host` header, so the header map has room, as in any request actix parsed.
                let request = TestRequest::get()
                    .uri("/")
                    .insert_header((HOST, HeaderValue::from_static("localhost")));
                let request = if with_id {
                    request.insert_header(("x-request-id", self.incoming.clone()))
                } else {
                    request
                };
                request.to_request()
            })
            .collect()
    }

    fn serve(&self, requests: Vec<Request>) -> usize {
        (self.serve)(&self.system, requests)
    }
}
