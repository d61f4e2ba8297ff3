//! With the `tracing` feature and tracing-opentelemetry, the request span's
//! `correlation_id` reaches exported spans as an attribute, in every adapter; with
//! `OpenTelemetryTraceId` as the generator, the ID is the trace's ID.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use correlation_axum::correlation_core::CorrelationConfig;
use correlation_axum::correlation_core::strategy::{Hex32, OpenTelemetryTraceId};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::ServiceExt;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// The name of the span our crates open around each request.
const SPAN: &str = "correlation";

const ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

struct Telemetry {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

/// One global subscriber for this test binary: tracing-opentelemetry exporting into memory.
fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ecosystem")));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        Telemetry { exporter, provider }
    })
}

impl Telemetry {
    /// The exported spans named `SPAN` whose `correlation_id` attribute is `id`.
    fn request_spans(&self, id: &str) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|span| span.name == SPAN)
            .filter(|span| {
                span.attributes.iter().any(|attribute| {
                    attribute.key.as_str() == "correlation_id" && attribute.value.as_str() == id
                })
            })
            .collect()
    }
}

#[test]
fn each_adapter_exports_one_span_with_the_correlation_id() {
    let telemetry = telemetry();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let axum_id = ID.replace('3', "a");
    let response = runtime.block_on(
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .layer(correlation_axum::CorrelationLayer::new())
            .oneshot(
                Request::get("/")
                    .header("x-request-id", &axum_id)
                    .body(Body::empty())
                    .unwrap(),
            ),
    );
    assert_eq!(
        response.unwrap().headers()["x-request-id"],
        axum_id.as_str()
    );

    let poem_id = ID.replace('3', "b");
    runtime.block_on(async {
        use poem::EndpointExt;
        #[poem::handler]
        fn index() -> &'static str {
            "ok"
        }
        let app = poem::Route::new()
            .at("/", poem::get(index))
            .with(correlation_poem::Correlation::default());
        let response = poem::test::TestClient::new(app)
            .get("/")
            .header("x-request-id", &poem_id)
            .send()
            .await;
        response.assert_header("x-request-id", poem_id.as_str());
    });

    let actix_id = ID.replace('3', "c");
    actix_web::rt::System::new().block_on(async {
        let app = actix_web::test::init_service(
            actix_web::App::new()
                .route("/", actix_web::web::get().to(|| async { "ok" }))
                .wrap(correlation_actix::Correlation::default()),
        )
        .await;
        let request = actix_web::test::TestRequest::get()
            .uri("/")
            .insert_header(("x-request-id", actix_id.as_str()))
            .to_request();
        let response = actix_web::test::call_service(&app, request).await;
        assert_eq!(
            response.headers().get("x-request-id").unwrap(),
            actix_id.as_str()
        );
        actix_web::test::read_body(response).await;
    });

    for (adapter, id) in [
        ("axum", &axum_id),
        ("poem", &poem_id),
        ("actix-web", &actix_id),
    ] {
        let spans = telemetry.request_spans(id);
        assert_eq!(
            spans.len(),
            1,
            "{adapter}: one exported `{SPAN}` span with correlation_id={id}"
        );
    }
}

#[test]
fn the_opentelemetry_trace_id_becomes_the_generated_id() {
    let telemetry = telemetry();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = CorrelationConfig::builder()
        .generator(OpenTelemetryTraceId::new())
        .validator(Hex32)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(correlation_axum::CorrelationLayer::with_config(config));

    // What an OpenTelemetry-instrumented layer outside ours does: a span per request.
    let outer = tracing::info_span!("outer");
    let response = runtime
        .block_on(
            app.oneshot(Request::get("/").body(Body::empty()).unwrap())
                .instrument(outer),
        )
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The span closes, and is exported, when the response body is dropped.
    drop(response);

    let spans = telemetry.request_spans(&id);
    assert_eq!(spans.len(), 1, "our span, with the generated ID");
    assert_eq!(
        spans[0].span_context.trace_id().to_string(),
        id,
        "the generated ID is the trace ID our span (and the outer span) belongs to"
    );

    // Outside any span it falls back to a UUID v4.
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(correlation_axum::CorrelationLayer::with_config(
            CorrelationConfig::builder()
                .generator(OpenTelemetryTraceId::new())
                .build()
                .unwrap(),
        ));
    let response = runtime
        .block_on(app.oneshot(Request::get("/").body(Body::empty()).unwrap()))
        .unwrap();
    let fallback = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(fallback.len(), 32);
    assert_ne!(fallback, id);
}
