//! The floor under Gatehouse: Pingora's generic proxy (`ProxyHttp`) with no gate work at all,
//! set up as Gatehouse sets up its own server (threads, runtime, listener buffer, upstream
//! peer), and forwarding every request to the config's `[upstream]` with one header added.
//! `bench/run.sh` measures it beside Gatehouse, so the table shows how much of a proxied
//! request's cost is Pingora's and how much is the gate's.
//!
//! ```text
//! cargo run --example floor_proxy -- run --config CONFIG
//! ```
//!
//! Not a product: it checks nothing. It reads only `server.listen`, `server.threads` and
//! `[upstream]` from a Gatehouse config.

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use std::process::ExitCode;

/// The allocator the gate's binary uses (src/main.rs), so the floor is measured like it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor {
    peer: HttpPeer,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut (),
    ) -> pingora::Result<()> {
        upstream.insert_header("X-Forwarded-Proto", "http")
    }

    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        gatehouse::gate::downstream_modules(modules);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [run, flag, config] if run == "run" && flag == "--config" => config,
        _ => {
            eprintln!("usage: floor_proxy run --config CONFIG");
            return ExitCode::from(2);
        }
    };
    let settings = match gatehouse::config::load_file(config.as_ref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(up) = settings.upstream.as_ref() else {
        eprintln!("{config}: the floor proxy needs an [upstream]");
        return ExitCode::FAILURE;
    };
    let mut peer = HttpPeer::new(up.addr, false, String::new());
    peer.options.connection_timeout = Some(up.connect_timeout);
    peer.options.read_timeout = Some(up.read_timeout);
    let mut server = pingora::server::Server::new_with_opt_and_conf(
        None,
        gatehouse::gate::server_conf(settings.threads, 5),
    );
    server.bootstrap();
    let proxy = pingora::proxy::http_proxy(&server.configuration, Floor { peer });
    let mut service = pingora::services::listening::Service::new("floor".to_string(), proxy);
    service.add_listener(gatehouse::gate::listener(&settings.listen.to_string()));
    server.add_service(service);
    server.run_forever()
}
