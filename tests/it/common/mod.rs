//! Test helpers: loopback servers whose truth is known, an nginx harness,
//! and an in-process runner. Every server binds 127.0.0.1:0.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Runs gateprobe in-process and returns its exit code.
pub async fn run(args: &[&str]) -> u8 {
    let mut argv = vec!["gateprobe"];
    argv.extend_from_slice(args);
    let cli = gateprobe::cli::Cli::parse_from(argv);
    match gateprobe::run(cli).await {
        Ok(code) => code,
        Err(err) => gateprobe::exit_code_for_error(&err),
    }
}

/// Reads a JSON report.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// Validates a report against the committed JSON Schema.
pub fn assert_valid_report(report: &serde_json::Value) {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match its schema: {errors:#?}"
    );
}

/// Checks the books: every request that came due counted exactly once.
pub fn assert_books_balance(report: &serde_json::Value) {
    let run = &report["run"];
    let in_classes: u64 = report["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    let due = run["requests_due"].as_u64().unwrap();
    let dropped = run["dropped"].as_u64().unwrap();
    let aborted = run["aborted"].as_u64().unwrap();
    assert_eq!(in_classes, run["requests_completed"].as_u64().unwrap());
    assert_eq!(
        due,
        in_classes + dropped + aborted,
        "due = classes + dropped + aborted"
    );
    assert_eq!(run["requests_sent"].as_u64().unwrap(), in_classes + aborted);
}

/// What a counting server served.
#[derive(Default)]
pub struct Counts {
    pub total: AtomicU64,
    pub empty: AtomicU64,
    pub json: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
}

impl Counts {
    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

pub type Handler = Arc<dyn Fn(&Request<Incoming>, &Counts) -> Response<Full<Bytes>> + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1:0 answering with `handler`; it runs until
/// the test's runtime ends.
pub async fn serve(handler: Handler) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let served = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            served.connections.fetch_add(1, Ordering::SeqCst);
            let (handler, counts) = (handler.clone(), served.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    counts.total.fetch_add(1, Ordering::SeqCst);
                    let response = handler(&request, &counts);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, counts)
}

/// A server that answers 200 "ok" to everything.
pub async fn serve_ok() -> (SocketAddr, Arc<Counts>) {
    serve(Arc::new(|_, _| {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    }))
    .await
}

/// A server like a 10% Mock canary: an empty body for a random 10% of
/// requests, JSON otherwise, counting each.
pub async fn serve_canary_split() -> (SocketAddr, Arc<Counts>) {
    serve(Arc::new(|_, counts| {
        if rand::random::<f64>() < 0.10 {
            counts.empty.fetch_add(1, Ordering::SeqCst);
            Response::new(Full::new(Bytes::new()))
        } else {
            counts.json.fetch_add(1, Ordering::SeqCst);
            Response::new(Full::new(Bytes::from_static(
                br#"{"version":"1.4.2","ok":true}"#,
            )))
        }
    }))
    .await
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A real gateway (nginx, HAProxy) on loopback with a config of the test's
/// own; stopped on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub type Nginx = Daemon;

impl Drop for Daemon {
    /// SIGTERM first: nginx's master stops its workers on it (a SIGKILL
    /// would leave them running, orphaned); SIGKILL after a second.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Held while a test installs something (apt-get, pip): tests run in
/// parallel, and two package managers at once fail on each other's locks
/// (dpkg's lock file; pip's half-written user site), which would turn a
/// test into a skip.
pub fn installing() -> std::sync::MutexGuard<'static, ()> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first of `paths` that exists, installing Debian's `package` with
/// apt-get (once per package and process) when none does and we are root;
/// otherwise says why the test is skipped.
pub fn debian_binary(package: &str, paths: &[&str]) -> Result<PathBuf, String> {
    static TRIED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let find = || paths.iter().map(PathBuf::from).find(|path| path.exists());
    let _installing = installing();
    let mut tried = TRIED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if find().is_none() && !tried.iter().any(|done| done == package) {
        tried.push(package.to_string());
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0"));
        if is_root && Path::new("/usr/bin/apt-get").exists() {
            say(&format!(
                "installing {package} with apt-get for the real-gateway tests"
            ));
            // .ci/run may be installing the same packages meanwhile: wait
            // for dpkg's lock rather than fail on it.
            let _ = Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "update", "-qq"])
                .stdout(Stdio::null())
                .status();
            let _ = Command::new("apt-get")
                .args([
                    "-o",
                    "DPkg::Lock::Timeout=600",
                    "install",
                    "-y",
                    "-qq",
                    package,
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
        }
    }
    find().ok_or_else(|| {
        format!("{package} is not installed and could not be installed (needs root and apt-get)")
    })
}

/// Prints past libtest's output capture, so that a skip is never silent.
pub fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Finds the nginx binary (Debian's nginx-light, installed when missing).
pub fn nginx_binary() -> Result<PathBuf, String> {
    debian_binary(
        "nginx-light",
        &["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"],
    )
}

/// Starts `binary ARGS` and waits for it to listen on `port`; a process that
/// exits on the test's own config is a bug in the test, not a skip.
fn start_daemon(
    name: &str,
    binary: PathBuf,
    args: &[std::ffi::OsString],
    port: u16,
    dir: tempfile::TempDir,
) -> Result<Daemon, String> {
    let mut child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {name}: {err}"))?;
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("{name} exited ({status}) on the test's config: {stderr}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Daemon {
                child,
                port,
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{name} did not start listening"))
}

/// Starts nginx with `server_body` inside a `server` listening on a free
/// loopback port. Returns Err with a reason when nginx is not available.
pub fn start_nginx(http_extra: &str, server_body: &str) -> Result<Nginx, String> {
    start_nginx_listening("", http_extra, server_body)
}

/// [`start_nginx`] with `listen_extra` on the listen line (`ssl`).
pub fn start_nginx_listening(
    listen_extra: &str,
    http_extra: &str,
    server_body: &str,
) -> Result<Nginx, String> {
    let binary = nginx_binary()?;
    let dir = temp_dir();
    let port = free_port();
    let root = dir.path().display().to_string();
    let config = format!(
        "worker_processes 1;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
         client_body_temp_path {root}; proxy_temp_path {root}; fastcgi_temp_path {root};\n\
         uwsgi_temp_path {root}; scgi_temp_path {root};\n{http_extra}\n\
         server {{ listen 127.0.0.1:{port} {listen_extra};\n{server_body}\n }}\n}}\n"
    );
    let config_path = dir.path().join("nginx.conf");
    std::fs::write(&config_path, config).unwrap();
    let args = [
        "-c".into(),
        config_path.into_os_string(),
        "-p".into(),
        dir.path().as_os_str().to_owned(),
    ];
    start_daemon("nginx", binary, &args, port, dir)
}

/// Starts HAProxy (Debian's package, installed when missing) in the
/// foreground with `frontend_body` inside an HTTP frontend bound to a free
/// loopback port. Returns Err with a reason when HAProxy is not available.
pub fn start_haproxy(frontend_body: &str) -> Result<Daemon, String> {
    let binary = debian_binary("haproxy", &["/usr/sbin/haproxy", "/usr/bin/haproxy"])?;
    let dir = temp_dir();
    let port = free_port();
    let config = format!(
        "global\n  maxconn 8192\ndefaults\n  mode http\n  timeout connect 2s\n  \
         timeout client 30s\n  timeout server 30s\n\
         frontend probe\n  bind 127.0.0.1:{port}\n{frontend_body}\n"
    );
    let config_path = dir.path().join("haproxy.cfg");
    std::fs::write(&config_path, config).unwrap();
    let args = ["-f".into(), config_path.into_os_string(), "-db".into()];
    start_daemon("haproxy", binary, &args, port, dir)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `gateprobe ARGS --quiet --json <temp file>` in-process and returns
/// the exit code and the report (`Null` when none was written).
pub async fn load_report(args: &[&str]) -> (u8, serde_json::Value) {
    let dir = temp_dir();
    let path = dir.path().join("report.json");
    let mut argv = args.to_vec();
    argv.extend_from_slice(&["--quiet", "--json", path.to_str().unwrap()]);
    let code = run(&argv).await;
    let report = if path.exists() {
        read_json(&path)
    } else {
        serde_json::Value::Null
    };
    (code, report)
}
