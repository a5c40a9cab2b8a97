"""`povdyn report`: run the quarterly report notebook for the nation and each province,
in parallel, and publish self-contained HTML pages, an index and a manifest.

For one run (period P) it writes, under ``out_dir/P/``:

* ``notebooks/<slug>.ipynb`` — the executed notebook of each region (the template
  notebook itself is only read, never edited);
* ``<slug>.html`` — the page a reviewer reads: code, prompts, warnings and tracebacks
  hidden, figures embedded as PNG, exported with povdyn's offline nbconvert template
  (no script, stylesheet or font is fetched from the internet);
* ``index.html`` — links to every page, with the headline table of every region (small
  cells suppressed) and, for a failed region, a link to its log (``logs/<slug>.log``);
* ``manifest.json`` — parameters, input data fingerprint, package versions, git commit
  and timings, so any page can be reproduced.

Regions run in separate worker processes; each starts its own kernel on the current
interpreter over IPC sockets (no TCP ports, so parallel kernels never collide on
"Address already in use"), with DuckDB limited to one thread and a non-interactive
matplotlib backend (inline, never a GUI). A failing region is recorded and does not stop the others.
Every file is written atomically (temporary file + rename).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import pandas as pd

from .config import settings
from .errors import PeriodError, PovdynError
from .labels import label
from . import periods as _periods

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "povdyn"
REPORT_NOTEBOOK = "quarterly_report.ipynb"
KEY_PACKAGES = ["povdyn", "pandas", "numpy", "duckdb", "ibis-framework", "pyarrow",
                "statsmodels", "scipy", "matplotlib", "seaborn", "papermill", "nbconvert",
                "nbclient", "ipykernel", "jupyter-client"]
EXTERNAL_URL = re.compile(r"https?://", re.IGNORECASE)


# --------------------------------------------------------------------------- small helpers
def slugify(name: str) -> str:
    """ASCII file name of a region: "Hà Nội" -> "ha-noi", "Thành phố Hồ Chí Minh" ->
    "thanh-pho-ho-chi-minh". Display names keep their diacritics; only files use slugs."""
    text = str(name).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return text or "region"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file via a temporary file in the same folder and a rename, so a reader
    never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def data_fingerprint(data_dir: Path) -> dict:
    """SHA-256 of each parquet file in data_dir and one combined digest over
    (file name, file digest) pairs in name order."""
    data_dir = Path(data_dir)
    files = {}
    for path in sorted(data_dir.glob("*.parquet")):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[path.name] = digest.hexdigest()
    combined = hashlib.sha256()
    for name, digest in files.items():
        combined.update(f"{name}\0{digest}\n".encode())
    return {"sha256": combined.hexdigest(), "files": files}


def package_versions() -> dict:
    """Installed versions of the packages a page depends on."""
    out = {"python": sys.version.split()[0]}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root: Path | None = None) -> str | None:
    """The checkout's commit (with "+dirty" when tracked files changed), or None."""
    root = Path(root or settings().project_root)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def external_urls(page: str) -> list[str]:
    """Every http:// or https:// occurrence in a page (with some context). A published
    page must have none: no script, stylesheet, font or image may be fetched."""
    return [page[max(0, m.start() - 40): m.end() + 40] for m in EXTERNAL_URL.finditer(page)]


def panel_path(data_dir: Path) -> Path:
    """The processed panel (data_dir/panel.parquet), with an error saying what to run."""
    path = Path(data_dir) / "panel.parquet"
    if not path.exists():
        raise PovdynError(f"{path} not found: run `povdyn ingest` (or `make ingest`) first, "
                          "or pass --data-dir to the folder holding panel.parquet")
    return path


def resolve_period(data_dir: Path, period="latest"):
    """The report period in canonical form; "latest" = the last period in the panel.
    A period not in the data is an error listing the available ones."""
    column = pd.read_parquet(panel_path(data_dir), columns=["period"])["period"]
    available = sorted({_periods.parse_period(p) for p in pd.unique(column)}, key=lambda x: x[1])
    labels_ = [_periods.label(f, i) for f, i in available]
    if period in (None, "latest"):
        return labels_[-1]
    wanted = _periods.parse_period(period)
    if wanted not in available:
        raise PeriodError(f"period {period!r} is not in {data_dir}/panel.parquet; "
                          f"available: {labels_[0]} .. {labels_[-1]}")
    return _periods.label(*wanted)


def resolve_regions(data_dir: Path, regions="all") -> list[str]:
    """"all" -> ["national", every province_2025 in the data (sorted)]; "national";
    a comma-separated string or a list of province names (spelled as in the data, or
    without diacritics: "ha noi" -> "Hà Nội"; a name that matches nothing is kept and
    fails in its own page, isolated from the others)."""
    if regions is None or regions == "all":
        provinces = pd.read_parquet(panel_path(data_dir), columns=["province_2025"])["province_2025"]
        names = sorted(p for p in pd.unique(provinces.dropna()))
        return ["national", *names]
    if isinstance(regions, str):
        regions = [r.strip() for r in regions.split(",")]
    provinces = pd.read_parquet(panel_path(data_dir), columns=["province_2025"])["province_2025"]
    known = {slugify(p): p for p in pd.unique(provinces.dropna())}
    out = []
    for r in regions:
        r = unicodedata.normalize("NFC", str(r).strip())
        if r.lower() in ("national", "toàn quốc", "toan quoc"):
            r = "national"
        else:  # "ha noi" / "HÀ NỘI" -> the name as written in the data ("Hà Nội")
            r = known.get(slugify(r), r)
        if r and r not in out:
            out.append(r)
    if not out:
        raise PovdynError("no region given: use 'all', 'national' or a comma-separated list")
    return out


def template_notebook() -> Path:
    """The report template: notebooks/quarterly_report.ipynb of the checkout."""
    return settings().project_root / "notebooks" / REPORT_NOTEBOOK


# --------------------------------------------------------------------------- kernel
# The kernel imports duckdb before ipykernel: DuckDB 2 decides at import whether it runs
# inside Jupyter, and there refuses `SET enable_progress_bar = false` unless ipywidgets is
# installed ("required package 'ipywidgets' is missing"). Imported first, it behaves as in
# a script, so povdyn.engine.connect works unchanged in report kernels.
KERNEL_ARGV = [sys.executable, "-c",
               "import duckdb; from ipykernel import kernelapp; kernelapp.launch_new_instance()",
               "-f", "{connection_file}"]


def _kernel_manager_class():
    """A KernelManager that runs ipykernel on this interpreter (sys.executable), so a
    fresh clone needs no kernelspec, and talks over IPC sockets in a private folder
    instead of TCP ports (parallel papermill runs otherwise sometimes die with ZMQ
    "Address already in use")."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class LocalIPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            socket_dir = tempfile.mkdtemp(prefix="povdyn-ipc-")
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(socket_dir, "k" + uuid.uuid4().hex[:8]))
            super().__init__(**kwargs)
            self._socket_dir = socket_dir
            self._kernel_spec = KernelSpec(argv=KERNEL_ARGV,
                display_name="povdyn (this interpreter)", language="python", env={},
            )

        def cleanup_resources(self, restart=False):
            super().cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._socket_dir, ignore_errors=True)

    return LocalIPCKernelManager


def _worker_init() -> None:
    """Environment every kernel inherits: one DuckDB thread per kernel (the workers run
    in parallel), a non-interactive matplotlib backend (the inline one: plain "Agg"
    would stop figures from reaching the notebook's outputs), no progress bars."""
    os.environ["POVDYN_DUCKDB_THREADS"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ["TQDM_DISABLE"] = "1"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _is_kernel_start_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("Address already in use", "Kernel died before replying",
                                   "Kernel didn't respond", "ZMQError", "kernel_info"))


def execute_notebook(notebook, output, parameters: dict | None = None, timeout: int = 900, cwd=None) -> Path:
    """Execute a notebook with papermill on this interpreter's kernel (IPC transport,
    one DuckDB thread, inline figures), retrying once if the kernel fails to start.
    Writes the executed notebook to `output` and returns its path; a failing cell
    raises papermill's PapermillExecutionError (the output notebook is still written)."""
    _worker_init()
    import papermill as pm

    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                str(notebook), str(output), parameters=parameters or {},
                kernel_manager_class=_kernel_manager_class(), kernel_name="python3", language="python",
                progress_bar=False, log_output=False, cwd=str(cwd or Path(notebook).parent),
                execution_timeout=timeout, start_timeout=120,
            )
            return Path(output)
        except Exception as exc:
            if not (_is_kernel_start_failure(exc) and attempt == 1):
                raise
    return Path(output)


_KERNEL: dict = {}


def _shutdown_kernel() -> None:
    km = _KERNEL.pop("km", None)
    if km is not None:
        try:
            km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _worker_kernel(cwd):
    """This worker's kernel, started once and reused for every page it renders (saves
    the kernel start and the imports, several seconds a page); restarted if it died."""
    km = _KERNEL.get("km")
    if km is not None and km.is_alive():
        return km
    _shutdown_kernel()
    km = _kernel_manager_class()(kernel_name="python3")
    km.start_kernel(cwd=str(cwd))
    _KERNEL["km"] = km
    if not _KERNEL.get("finalizer"):
        from multiprocessing import util

        # ProcessPoolExecutor workers leave through os._exit: atexit would not run
        _KERNEL["finalizer"] = util.Finalize(None, _shutdown_kernel, exitpriority=10)
    return km


def execute_in_worker_kernel(notebook, output, parameters: dict | None = None, timeout: int = 900,
                             cwd=None) -> Path:
    """Like execute_notebook, but in this process's reusable kernel: the namespace is
    reset before each notebook (%reset -f), parameters are injected as papermill does
    (a cell tagged "injected-parameters"), the executed notebook is written to `output`
    even when a cell fails (then nbclient's CellExecutionError is raised). After a
    timeout or any kernel trouble the kernel is shut down, so the next page starts clean."""
    _worker_init()
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    cwd = Path(cwd or Path(notebook).parent)
    nb = load_notebook_node(str(notebook))  # as papermill reads it (every cell gets metadata.tags)
    nb = parameterize_notebook(nb, parameters or {}, kernel_name="python3", language="python")
    km = _worker_kernel(cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        kc.execute_interactive("%reset -f\nimport matplotlib.pyplot as _plt; _plt.close('all'); del _plt",
                               store_history=False, timeout=60)
    finally:
        kc.stop_channels()
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError:
        raise
    except BaseException:
        _shutdown_kernel()
        raise
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        atomic_write(Path(output), nbformat.writes(nb))
    return Path(output)


def execute_region(job: dict) -> dict:
    """Run the report notebook for one region and export its page (runs in a worker).

    Returns a result dict: region, slug, ok, seconds, notebook, html, log, error."""
    _worker_init()
    import nbformat

    started = time.perf_counter()
    out_dir = Path(job["out_dir"])
    slug = job["slug"]
    nb_path = out_dir / "notebooks" / f"{slug}.ipynb"
    html_path = out_dir / f"{slug}.html"
    log_path = out_dir / "logs" / f"{slug}.log"
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    result = dict(region=job["region"], slug=slug, ok=False, notebook=str(nb_path.relative_to(out_dir)),
                  html=None, log=None, error=None)
    tmp_nb = nb_path.with_name(f".{slug}.{uuid.uuid4().hex[:8]}.ipynb")
    error = None
    run = execute_in_worker_kernel if job.get("reuse_kernel", True) else execute_notebook
    try:
        run(job["template"], tmp_nb, job["parameters"], timeout=job.get("timeout", 900), cwd=job.get("cwd"))
    except KeyboardInterrupt:
        raise  # Ctrl-C stops the batch; it is not a failure of this region
    except BaseException as exc:  # noqa: BLE001 - every failure is isolated and logged
        error = exc
    try:
        if tmp_nb.exists():
            os.replace(tmp_nb, nb_path)
        if error is None:
            nb = nbformat.read(nb_path, as_version=4)
            page = export_html(nb, title=job["title"], lang=job["lang"], footer=job["footer"])
            atomic_write(html_path, page)
            result.update(ok=True, html=html_path.name)
            if log_path.exists():
                log_path.unlink()
    except BaseException as exc:  # noqa: BLE001
        error = exc
    if error is not None:
        if html_path.exists():  # never leave last run's page looking current
            html_path.unlink()
        text = _ANSI.sub("", f"{type(error).__name__}: {error}\n\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)))
        atomic_write(log_path, text)
        summary = (f"{error.ename}: {error.evalue}" if getattr(error, "ename", None)
                   else f"{type(error).__name__}: {error}")
        result.update(ok=False, log=str(log_path.relative_to(out_dir)),
                      error=_ANSI.sub("", summary).strip()[:2000])
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


# --------------------------------------------------------------------------- HTML
def _css() -> str:
    return (TEMPLATES_DIR / TEMPLATE_NAME / "static" / "povdyn.css").read_text(encoding="utf-8")


_HEADING = re.compile(r'<h([23]) id="([^"]+)">(.*?)(?:<a class="anchor-link"[^>]*>.*?</a>)?</h\1>', re.S)


def table_of_contents(page: str, lang: str = "vi") -> str:
    """A <nav> listing the page's h2/h3 headings (ids made by nbconvert)."""
    items = []
    for level, anchor, text in _HEADING.findall(page):
        text = re.sub(r"<[^>]+>", "", text).strip()
        items.append(f'<li class="level-{level}"><a href="#{anchor}">{text}</a></li>')
    if not items:
        return ""
    return (f'<nav class="toc" aria-label="{html.escape(label("contents", lang))}">'
            f'<h2>{html.escape(label("contents", lang))}</h2><ol>' + "".join(items) + "</ol></nav>")


def export_html(nb, title: str, lang: str = "vi", footer: str = "") -> str:
    """The reviewer's page of an executed notebook: povdyn offline template, inputs and
    prompts excluded, stderr/tracebacks dropped, a table of contents, the footer.
    Raises PovdynError if the page would load anything over http(s)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
    )
    remover = TagRemovePreprocessor(remove_cell_tags={"parameters", "injected-parameters", "remove_cell"},
                                    remove_all_outputs_tags={"remove_output"})
    exporter.register_preprocessor(remover, enabled=True)
    resources = {"povdyn": {"lang": lang, "title": title, "css": _css(), "footer": footer}}
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    page = page.replace("<!--POVDYN-TOC-->", table_of_contents(page, lang), 1)
    found = external_urls(page)
    if found:
        raise PovdynError(f"the page '{title}' would load {len(found)} external resource(s), "
                          f"e.g. {found[0]!r}; remove the link or embed the resource")
    return page


def footer_html(fingerprint: str, generated: str, lang: str = "vi") -> str:
    from . import __version__

    return (f"{html.escape(label('data_fingerprint', lang))}: <code>{fingerprint[:16]}</code> · "
            f"{html.escape(label('generated', lang))}: {generated} · "
            f"{html.escape(label('version', lang))}: {__version__}")


# --------------------------------------------------------------------------- run
@dataclass
class ReportRun:
    """Outcome of run_report. `failed`: regions whose page could not be made;
    `pages`: {region: html path}; `index_path`, `manifest_path`; `results`: one dict
    per region (ok, seconds, log, error)."""

    period: str
    out_dir: Path
    index_path: Path
    manifest_path: Path
    pages: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)
    results: list = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"povdyn report {self.period}: {len(self.pages)} page(s) in {self.seconds:.1f} s, "
                 f"{len(self.failed)} failed", f"  index:    {self.index_path}",
                 f"  manifest: {self.manifest_path}"]
        for r in self.results:
            if not r["ok"]:
                lines.append(f"  FAILED {r['region']}: {r['error'].splitlines()[0] if r['error'] else ''}"
                             f" (log: {self.out_dir / r['log']})")
        return "\n".join(lines)


HEADLINE_CSV = "headline.csv"


def _headline_for_index(data_dir: Path, period, regions: list[str], lang: str,
                        run_dir: Path | None = None) -> tuple[str, str | None]:
    """The index's headline table (HTML, small cells suppressed) or a pending note. The
    same suppressed table is written as run_dir/headline.csv (the download offered on
    the index; UTF-8 with BOM so spreadsheet programs show the diacritics)."""
    try:
        from .tables import regions_overview, to_html

        table = regions_overview(Path(data_dir) / "panel.parquet", period, regions, lang=lang)
        if run_dir is not None:
            atomic_write(Path(run_dir) / HEADLINE_CSV, table.to_csv(index=False).encode("utf-8-sig"))
        return to_html(table), None
    except Exception as exc:  # noqa: BLE001 - the index is still useful without it
        note = html.escape(label("pending", lang))
        return f'<p class="pending">{note}</p>', f"{type(exc).__name__}: {exc}"


def run_report(
    period="latest",
    regions="all",
    workers: int = 2,
    out_dir=None,
    data_dir=None,
    lang: str = "vi",
    progress: bool = True,
    notebook=None,
    standard: str = "national",
    within: int = 2,
    engine: str | None = None,
    timeout: int = 900,
    reuse_kernels: bool = True,
) -> ReportRun:
    """Render the report for `regions` at `period` (see the module docstring).

    period: "latest" or a period label; regions: "all", "national", a comma-separated
    string or a list; workers: parallel processes; out_dir: default settings().reports_dir;
    data_dir: default settings().processed_dir; lang: "vi" or "en"; notebook: template
    (default notebooks/quarterly_report.ipynb); reuse_kernels: each worker keeps one
    kernel for all its pages (namespace reset between pages) instead of papermill's
    kernel per page. Returns a ReportRun (``.failed`` lists
    the regions that failed; each has a log under out_dir/<period>/logs/)."""
    started = time.perf_counter()
    cfg = settings()
    data_dir = Path(data_dir or cfg.processed_dir).resolve()
    out_root = Path(out_dir or cfg.reports_dir).resolve()
    template = Path(notebook or template_notebook()).resolve()
    if not template.exists():
        raise PovdynError(f"report notebook {template} not found")
    if lang not in ("vi", "en"):
        raise PovdynError(f"lang={lang!r}: use 'vi' or 'en'")
    period = resolve_period(data_dir, period)
    region_list = resolve_regions(data_dir, regions)
    run_dir = out_root / str(period)
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    fingerprint = data_fingerprint(data_dir)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = footer_html(fingerprint["sha256"], generated, lang)
    template_hash = hashlib.sha256(template.read_bytes()).hexdigest()

    jobs, slugs = [], set()
    for region in region_list:
        slug = slugify(region)
        while slug in slugs:
            slug += "-x"
        slugs.add(slug)
        title = f"{label('report_title', lang)} — {label('national', lang) if region == 'national' else region} — {period}"
        params = dict(region=region, period=str(period), standard=standard, within=int(within),
                      engine=engine or cfg.engine, data_dir=str(data_dir), lang=lang)
        jobs.append(dict(region=region, slug=slug, out_dir=str(run_dir), template=str(template),
                         parameters=params, title=title, lang=lang, footer=footer,
                         cwd=str(template.parent), timeout=timeout, reuse_kernel=reuse_kernels))

    results = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=f"report {period}", unit="page")
    workers = max(1, min(int(workers), len(jobs)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_worker_init) as pool:
        futures = {pool.submit(execute_region, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                res = future.result()
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            except BaseException as exc:  # noqa: BLE001 - a dead worker fails its region only
                text = f"{type(exc).__name__}: {exc}"
                log = Path(job["out_dir"]) / "logs" / f"{job['slug']}.log"
                atomic_write(log, text + "\n")
                res = dict(region=job["region"], slug=job["slug"], ok=False, notebook=None, html=None,
                           log=str(log.relative_to(run_dir)), error=text, seconds=0.0)
            results.append(res)
            if bar is not None:
                bar.update(1)
                if not res["ok"]:
                    bar.write(f"failed: {res['region']} (log: {run_dir / res['log']})")
    if bar is not None:
        bar.close()
    order = {r: i for i, r in enumerate(region_list)}
    results.sort(key=lambda r: order[r["region"]])

    # the template must be unchanged by the run (reports are immutable outputs)
    if hashlib.sha256(template.read_bytes()).hexdigest() != template_hash:
        raise PovdynError(f"the template notebook {template} changed during the run")

    headline_html, headline_error = _headline_for_index(data_dir, period, region_list, lang, run_dir)
    index_path = run_dir / "index.html"
    atomic_write(index_path, render_index(period, results, headline_html, footer, lang))
    seconds = round(time.perf_counter() - started, 2)
    manifest = {
        "period": str(period),
        "parameters": dict(regions=region_list, workers=workers, reuse_kernels=reuse_kernels,
                           lang=lang, standard=standard,
                           within=int(within), engine=engine or cfg.engine, min_cell=cfg.min_cell,
                           data_dir=str(data_dir), out_dir=str(out_root)),
        "template": {"path": str(template), "sha256": template_hash},
        "data": fingerprint,
        "packages": package_versions(),
        "git_commit": git_commit(cfg.project_root),
        "generated_utc": generated,
        "seconds_total": seconds,
        "index_headline_error": headline_error,
        "regions": [{k: r.get(k) for k in ("region", "slug", "ok", "seconds", "notebook",
                                            "html", "log", "error")} for r in results],
    }
    manifest_path = run_dir / "manifest.json"
    atomic_write(manifest_path, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return ReportRun(
        period=str(period), out_dir=run_dir, index_path=index_path, manifest_path=manifest_path,
        pages={r["region"]: run_dir / r["html"] for r in results if r["ok"]},
        failed=[r["region"] for r in results if not r["ok"]], results=results, seconds=seconds,
    )


def render_index(period, results: list[dict], headline_html: str, footer: str, lang: str = "vi") -> str:
    """The index page: headline table of every region and links to every page (failed
    regions link to their log). Rendered from templates/site_index.html.j2."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    tpl = env.get_template("site_index.html.j2")
    rows = [dict(name=label("national", lang) if r["region"] == "national" else r["region"], ok=r["ok"],
                 href=r.get("html"), log_href=r.get("log"), link_text=label("page", lang),
                 seconds=float(r.get("seconds") or 0.0)) for r in results]
    ok = sum(r["ok"] for r in results)
    vi = lang == "vi"
    page = tpl.render(
        lang=lang,
        title=f"{label('index_title', lang)} — {period}",
        subtitle=(f"{ok}/{len(results)} trang báo cáo đã tạo." if vi
                  else f"{ok}/{len(results)} pages rendered."),
        headline_heading="Các chỉ tiêu chính theo địa phương" if vi else "Headline figures by region",
        headline_table=_markup(headline_html),
        suppression_note=label("suppression_note", lang).format(min_cell=settings().min_cell),
        download_text="Tải bảng (CSV)" if vi else "Download the table (CSV)", download_href=HEADLINE_CSV,
        pages_heading="Trang báo cáo" if vi else "Report pages",
        region_heading="Địa phương" if vi else "Region",
        page_heading=label("page", lang),
        seconds_heading="Thời gian chạy (giây)" if vi else "Run time (s)",
        failed_text=label("failed", lang), log_text=label("log", lang),
        rows=rows, css=_markup(_css()), footer=_markup(footer),
    )
    return page


def _markup(text: str):
    from markupsafe import Markup

    return Markup(text)
