"""Storage for human evaluation and HITL filtering: SQLAlchemy 2.0 models and the operations on them.

One schema serves both kinds of job:
  AnnotationJob (kind "eval" | "hitl") -> AnnotationItem (one prompt + conditioning image)
  -> Candidate (an animation file).
An eval item has exactly one candidate (the sticker being judged); a HITL item has the candidates that
teachers generated for the same prompt and image (paper 2.3: six per job). Each item is assigned to
`AnnotationJob.annotators_per_item` annotators (3 in the paper); an Assignment is submitted exactly once, in one
transaction that writes its Answer rows (one per question; for HITL one row listing the selected
candidates, empty = "I wouldn't share any of these").

Durability on SQLite: WAL journal, synchronous=FULL, and every transaction starts with BEGIN IMMEDIATE
so that concurrent writers queue instead of failing on a lock upgrade. On PostgreSQL the job row is
locked (SELECT ... FOR UPDATE) while assigning, so an item never gets more annotators than asked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from ...errors import UserError
from .questions import HITL_QUESTION, AnswerError, parse_verdicts


class StoreInputError(UserError):
    """A bad value for one of the store's inputs (`field`: db, kind, name, job). Its text names the field
    in the store's own words; the CLI words it as its flag (`--job x: ...`)."""

    def __init__(self, field: str, detail: str) -> None:
        self.field, self.detail = field, detail
        super().__init__(f"{'database' if field == 'db' else field} {detail}")


EVAL, HITL = "eval", "hitl"
MEDIA_TYPES = {".webp": "image/webp", ".gif": "image/gif", ".png": "image/png", ".apng": "image/apng",
               ".webm": "video/webm", ".mp4": "video/mp4", ".mov": "video/quicktime"}
DEFAULT_DB = "sqlite:///human-eval.sqlite"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what secrets.token_urlsafe makes
MAX_ID = 2**62  # ids beyond this cannot exist; rejecting them early keeps SQLite from overflowing


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class AnnotationJob(Base):
    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint("kind in ('eval', 'hitl')", name="job_kind"),
                      CheckConstraint("annotators_per_item >= 1", name="job_annotators"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    annotators_per_item: Mapped[int] = mapped_column(default=3)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    items: Mapped[list[AnnotationItem]] = relationship(back_populates="job")


class AnnotationItem(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("job_id", "key"), Index("ix_items_job_order", "job_id", "order_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(400))  # unique in the job: "model/stem" (eval), "stem" (hitl)
    prompt: Mapped[str] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(400))  # conditioning image name from prompts.json
    order_key: Mapped[int]  # stable pseudo-random order, so models in one job are interleaved
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    job: Mapped[AnnotationJob] = relationship(back_populates="items")
    candidates: Mapped[list[Candidate]] = relationship(back_populates="item", order_by="Candidate.position")


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    position: Mapped[int]
    model: Mapped[str] = mapped_column(String(200))
    media_root: Mapped[str] = mapped_column(Text)  # the imported folder (absolute); files are served only below it
    media: Mapped[str] = mapped_column(Text)  # path relative to media_root, POSIX separators
    item: Mapped[AnnotationItem] = relationship(back_populates="candidates")


class Annotator(Base):
    __tablename__ = "annotators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("item_id", "annotator_id"),
                      Index("ix_assignments_annotator", "annotator_id", "submitted_at"),
                      {"sqlite_autoincrement": True})  # a released id is never reused for someone else

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(Text)
    item: Mapped[AnnotationItem] = relationship()
    answers: Mapped[list[Answer]] = relationship(back_populates="assignment")


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("assignment_id", "question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(32))
    passed: Mapped[bool]
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # failure reason keys (eval)
    selected: Mapped[list | None] = mapped_column(JSON)  # chosen candidate ids (hitl); [] = none of these
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    assignment: Mapped[Assignment] = relationship(back_populates="answers")


# ---- errors the web app maps to HTTP status codes -------------------------------------------------


class StoreError(Exception):
    """A request the store refuses; `status` is the HTTP code the app answers with."""

    status = 400


class NotFound(StoreError):
    status = 404


class Forbidden(StoreError):
    status = 403


class Conflict(StoreError):
    status = 409


class Unauthorized(StoreError):
    status = 401


class Invalid(StoreError):
    status = 422


# ---- engine --------------------------------------------------------------------------------------


def normalize_db_url(url: str) -> str:
    """A SQLAlchemy URL, or a plain file path taken as a SQLite database."""
    if "://" in url:
        return url
    path = Path(url).expanduser().resolve()
    if not path.parent.is_dir():
        raise StoreInputError("db", f"{url}: folder {path.parent} does not exist; expected a SQLAlchemy URL or a "
                        "path to a SQLite file in an existing folder")
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, full sync, foreign keys and BEGIN IMMEDIATE transactions."""
    url = normalize_db_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as e:
        raise StoreInputError("db", f"{url}: {str(e).splitlines()[0]}; expected e.g. sqlite:///eval.sqlite or "
                        "postgresql+psycopg://user@host/db") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # no implicit BEGIN from the driver; the "begin" event issues ours
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


# ---- what the importer hands over ----------------------------------------------------------------


@dataclass
class NewCandidate:
    model: str
    media_root: Path
    media: str  # relative to media_root


@dataclass
class NewItem:
    key: str
    prompt: str
    image: str | None
    candidates: list[NewCandidate] = field(default_factory=list)


def _order_key(job_name: str, item_key: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{job_name}\0{item_key}".encode()).digest()[:4], "big") >> 1


def _check_media(root: Path, rel: str) -> Path:
    """The file `rel` below `root`, refusing anything that resolves outside it (.., symlinks, absolute)."""
    root = root.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() not in MEDIA_TYPES or not path.is_file():
        raise NotFound(f"no media file {rel!r} in {root}")
    return path


# ---- the store -----------------------------------------------------------------------------------


class Store:
    """All reads and writes of the evaluation database; each public method is one transaction."""

    def __init__(self, url: str = DEFAULT_DB):
        self.engine = make_engine(url)
        try:
            Base.metadata.create_all(self.engine)
        except OperationalError as e:
            self.engine.dispose()
            raise StoreInputError("db", f"{self.engine.url!r}: cannot open the database "
                            f"({str(e.orig).strip().splitlines()[0]})") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- jobs and items --

    def add_items(self, job_name: str, kind: str, items: Sequence[NewItem], annotators_per_item: int = 3) -> int:
        """Create (or extend) a job with `items`, all or nothing; returns the job id."""
        if kind not in (EVAL, HITL):
            raise StoreInputError("kind", f"{kind}: expected 'eval' or 'hitl'")
        if not job_name.strip():
            raise StoreInputError("name", "is empty; expected a job name")
        for it in items:
            for c in it.candidates:
                try:
                    _check_media(c.media_root, c.media)
                except NotFound:
                    raise UserError(f"{c.media_root / c.media}: not an animation file inside {c.media_root} "
                                    f"(links out of the folder are refused); expected one of "
                                    f"{', '.join(MEDIA_TYPES)}") from None
        with self.session() as s:
            job = s.scalar(select(AnnotationJob).where(AnnotationJob.name == job_name))
            if job is None:
                job = AnnotationJob(name=job_name, kind=kind, annotators_per_item=annotators_per_item)
                s.add(job)
                s.flush()
            elif job.kind != kind:
                raise UserError(f"job {job_name!r} is a {job.kind} job; cannot add {kind} items to it")
            existing = set(s.scalars(select(AnnotationItem.key).where(AnnotationItem.job_id == job.id)))
            for it in items:
                if it.key in existing:
                    raise UserError(f"item {it.key!r} is already in job {job_name!r}; use another job name or model")
                existing.add(it.key)
                row = AnnotationItem(job_id=job.id, key=it.key, prompt=it.prompt, image=it.image,
                           order_key=_order_key(job_name, it.key))
                row.candidates = [Candidate(position=i, model=c.model, media_root=str(c.media_root.resolve()),
                                            media=c.media) for i, c in enumerate(it.candidates)]
                s.add(row)
            return job.id

    def jobs(self) -> list[dict]:
        """All jobs with their size."""
        with self.session() as s:
            rows = s.execute(select(AnnotationJob, func.count(AnnotationItem.id)).outerjoin(AnnotationItem)
                             .group_by(AnnotationJob.id).order_by(AnnotationJob.id))
            return [{"id": j.id, "name": j.name, "kind": j.kind, "items": n,
                     "annotators_per_item": j.annotators_per_item} for j, n in rows]

    def job_by_name(self, name: str) -> dict:
        """One job's summary by name (UserError if unknown)."""
        for j in self.jobs():
            if j["name"] == name:
                return j
        known = ", ".join(j["name"] for j in self.jobs()) or "none"
        raise StoreInputError("job", f"{name}: no such job; known jobs: {known}")

    def job(self, job_id: int) -> dict:
        """One job's summary by id."""
        for j in self.jobs():
            if j["id"] == job_id:
                return j
        raise NotFound(f"no job {job_id}")

    # -- annotators --

    def create_annotator(self, name: str) -> dict:
        """A new annotator with a fresh secret token."""
        name = _clean_name(name)
        with self.session() as s:
            if s.scalar(select(Annotator).where(Annotator.name == name)) is not None:
                raise Conflict(f"annotator name {name!r} is taken; log in with its token")
            a = Annotator(name=name, token=secrets.token_urlsafe(24))
            s.add(a)
            s.flush()
            return {"id": a.id, "name": a.name, "token": a.token}

    def annotator_by_token(self, token: str | None) -> dict:
        """The annotator owning `token` (Unauthorized if none)."""
        if not token:
            raise Unauthorized("not logged in; open the login page or add ?token=... to the URL")
        if not _TOKEN_RE.fullmatch(token):
            raise Unauthorized("malformed annotator token; log in again")
        with self.session() as s:
            a = s.scalar(select(Annotator).where(Annotator.token == token))
            if a is None:
                raise Unauthorized("unknown annotator token; log in again")
            return {"id": a.id, "name": a.name, "token": a.token}

    # -- assignments --

    def next_assignment(self, job_id: int, annotator_id: int) -> dict | None:
        """The annotator's open assignment in the job, else a new one (items others started come first), or None."""
        with self.session() as s:
            job = s.scalar(select(AnnotationJob).where(AnnotationJob.id == job_id).with_for_update())
            if job is None:
                raise NotFound(f"no job {job_id}")
            open_ = s.scalar(select(Assignment).join(AnnotationItem)
                             .where(AnnotationItem.job_id == job_id, Assignment.annotator_id == annotator_id,
                                    Assignment.submitted_at.is_(None))
                             .order_by(Assignment.id).limit(1))
            if open_ is None:
                taken = (select(Assignment.item_id, func.count().label("n")).join(AnnotationItem)
                         .where(AnnotationItem.job_id == job_id).group_by(Assignment.item_id).subquery())
                mine = select(Assignment.item_id).where(Assignment.annotator_id == annotator_id)
                n = func.coalesce(taken.c.n, 0)
                # Items already started by others come first, so items reach full coverage early.
                item = s.scalar(select(AnnotationItem).outerjoin(taken, taken.c.item_id == AnnotationItem.id)
                                .where(AnnotationItem.job_id == job_id, AnnotationItem.id.not_in(mine),
                                       n < job.annotators_per_item)
                                .order_by(n.desc(), AnnotationItem.order_key, AnnotationItem.id).limit(1))
                if item is None:
                    return None
                open_ = Assignment(item_id=item.id, annotator_id=annotator_id)
                s.add(open_)
                s.flush()
            item = open_.item
            return {"assignment_id": open_.id, "job_id": job_id, "kind": job.kind, "prompt": item.prompt,
                    "candidates": [{"id": c.id, "media_type": MEDIA_TYPES[Path(c.media).suffix.lower()]}
                                   for c in item.candidates]}

    def submit(self, assignment_id: int, annotator_id: int, *, answers: dict | None = None,
               selected: list[int] | None = None, none: bool = False, comment: str | None = None) -> None:
        """Write one assignment's answers atomically; a second submission is a Conflict and writes nothing."""
        with self.session() as s:
            a = s.get(Assignment, assignment_id, with_for_update=True)
            if a is None:
                raise NotFound(f"no assignment {assignment_id}")
            if a.annotator_id != annotator_id:
                raise Forbidden(f"assignment {assignment_id} belongs to another annotator")
            if a.submitted_at is not None:
                raise Conflict(f"assignment {assignment_id} was already submitted")
            if a.item.job.kind == EVAL:
                if selected is not None or none:
                    raise Invalid("this is an evaluation item; send 'answers', not 'selected'/'none'")
                try:
                    verdicts = parse_verdicts(answers)
                except AnswerError as e:
                    raise Invalid(str(e)) from None
                for question, (passed, reasons) in verdicts.items():
                    s.add(Answer(assignment_id=a.id, question=question, passed=passed, reasons=reasons))
            else:
                chosen = _check_selection(a.item, answers, selected, none)
                s.add(Answer(assignment_id=a.id, question=HITL_QUESTION, passed=bool(chosen), reasons=[],
                             selected=chosen))
            a.submitted_at = _now()
            a.comment = _clean_comment(comment)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(f"assignment {assignment_id} was already submitted") from None

    def progress(self, job_id: int, annotator_id: int) -> dict:
        """How far this annotator is in the job, and how far the job is overall."""
        with self.session() as s:
            job = s.get(AnnotationJob, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            items = s.scalar(select(func.count(AnnotationItem.id)).where(AnnotationItem.job_id == job_id)) or 0
            per_item = (select(Assignment.item_id, func.count().label("n"))
                        .join(AnnotationItem).where(AnnotationItem.job_id == job_id).group_by(Assignment.item_id)
                        .subquery())
            mine = select(Assignment.item_id).where(Assignment.annotator_id == annotator_id)
            free = s.scalar(select(func.count(AnnotationItem.id))
                            .outerjoin(per_item, per_item.c.item_id == AnnotationItem.id)
                            .where(AnnotationItem.job_id == job_id, AnnotationItem.id.not_in(mine),
                                   func.coalesce(per_item.c.n, 0) < job.annotators_per_item)) or 0
            done, open_ = self._counts(s, job_id, annotator_id)
            job_done = s.scalar(select(func.count(Assignment.id)).join(AnnotationItem)
                                .where(AnnotationItem.job_id == job_id, Assignment.submitted_at.is_not(None))) or 0
            return {"done": done, "total": done + open_ + free, "job_done": job_done,
                    "job_total": items * job.annotators_per_item}

    @staticmethod
    def _counts(s: Session, job_id: int, annotator_id: int) -> tuple[int, int]:
        rows = s.execute(select(Assignment.submitted_at.is_not(None), func.count()).join(AnnotationItem)
                         .where(AnnotationItem.job_id == job_id, Assignment.annotator_id == annotator_id)
                         .group_by(Assignment.submitted_at.is_not(None)))
        counts = {bool(k): n for k, n in rows}
        return counts.get(True, 0), counts.get(False, 0)

    def job_progress(self, job_id: int) -> list[dict]:
        """Per annotator: submitted and open assignments in the job."""
        with self.session() as s:
            if s.get(AnnotationJob, job_id) is None:
                raise NotFound(f"no job {job_id}")
            rows = s.execute(select(Annotator.name, Assignment.submitted_at.is_not(None), func.count())
                             .join(Assignment, Assignment.annotator_id == Annotator.id).join(AnnotationItem)
                             .where(AnnotationItem.job_id == job_id)
                             .group_by(Annotator.name, Assignment.submitted_at.is_not(None)))
            out: dict[str, dict] = {}
            for name, submitted, n in rows:
                out.setdefault(name, {"annotator": name, "done": 0, "open": 0})["done" if submitted else "open"] += n
            return sorted(out.values(), key=lambda r: r["annotator"])

    def release_stale(self, job_name: str, older_than: timedelta) -> int:
        """Delete open (unsubmitted) assignments older than `older_than` so their items go to someone else."""
        with self.session() as s:
            job = s.scalar(select(AnnotationJob).where(AnnotationJob.name == job_name))
            if job is None:
                raise StoreInputError("job", f"{job_name}: no such job")
            stale = s.scalars(select(Assignment).join(AnnotationItem)
                              .where(AnnotationItem.job_id == job.id, Assignment.submitted_at.is_(None),
                                     Assignment.assigned_at < _now() - older_than)).all()
            for a in stale:
                s.delete(a)
            return len(stale)

    def media_file(self, candidate_id: int) -> Path:
        """The file of a candidate, checked to lie inside the folder it was imported from."""
        with self.session() as s:
            c = s.get(Candidate, candidate_id)
            if c is None:
                raise NotFound(f"no media {candidate_id}")
            root, rel = Path(c.media_root), c.media
        return _check_media(root, rel)

    # -- what reports read --

    def eval_votes(self, job_name: str | None = None) -> list[dict]:
        """Submitted eval answers: one row per (item, annotator, question) with the model and pass/fail."""
        with self.session() as s:
            q = (select(AnnotationJob.name, AnnotationJob.annotators_per_item, AnnotationItem.id, Candidate.model,
                        Annotator.name,
                        Answer.question, Answer.passed, Answer.reasons)
                 .select_from(Answer).join(Assignment).join(Annotator)
                 .join(AnnotationItem, Assignment.item_id == AnnotationItem.id)
                 .join(AnnotationJob).join(Candidate, Candidate.item_id == AnnotationItem.id)
                 .where(AnnotationJob.kind == EVAL, Assignment.submitted_at.is_not(None)))
            if job_name is not None:
                q = q.where(AnnotationJob.name == job_name)
            keys = ("job", "required", "item", "model", "annotator", "question", "passed", "reasons")
            return [dict(zip(keys, row)) for row in s.execute(q)]

    def eval_items(self, job_name: str | None = None) -> list[dict]:
        """Every eval item with its model (including items nobody has answered yet)."""
        with self.session() as s:
            q = (select(AnnotationJob.name, AnnotationItem.id, Candidate.model).select_from(AnnotationItem)
                 .join(AnnotationJob)
                 .join(Candidate, Candidate.item_id == AnnotationItem.id).where(AnnotationJob.kind == EVAL))
            if job_name is not None:
                q = q.where(AnnotationJob.name == job_name)
            return [{"job": j, "item": i, "model": m} for j, i, m in s.execute(q)]

    def hitl_votes(self, job_name: str) -> list[dict]:
        """Per HITL candidate: prompt, model, file and how many of its item's submitted annotators chose it."""
        with self.session() as s:
            job = s.scalar(select(AnnotationJob).where(AnnotationJob.name == job_name, AnnotationJob.kind == HITL))
            if job is None:
                raise StoreInputError("job", f"{job_name}: no HITL job of that name")
            votes: dict[int, int] = {}
            answered: dict[int, int] = {}
            for item_id, chosen in s.execute(
                    select(Assignment.item_id, Answer.selected).join(Answer).join(AnnotationItem)
                    .where(AnnotationItem.job_id == job.id, Assignment.submitted_at.is_not(None))):
                answered[item_id] = answered.get(item_id, 0) + 1
                for cid in chosen or []:
                    votes[cid] = votes.get(cid, 0) + 1
            rows = s.scalars(select(Candidate).join(AnnotationItem).where(AnnotationItem.job_id == job.id)
                             .order_by(AnnotationItem.order_key, Candidate.position))
            return [{"item": c.item.key, "prompt": c.item.prompt, "candidate": c.id, "model": c.model,
                     "media": str(Path(c.media_root) / c.media), "votes": votes.get(c.id, 0),
                     "answers": answered.get(c.item_id, 0), "required": job.annotators_per_item} for c in rows]


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not (1 <= len(name) <= 64) or not name.isprintable():
        raise Invalid("annotator name must be 1-64 printable characters")
    return name


def _clean_comment(comment: str | None) -> str | None:
    if comment is not None and any(ch < " " and ch not in "\n\t\r" for ch in comment):
        raise Invalid("comment contains control characters; expected plain text")
    return comment.strip() or None if comment else None


def _check_selection(item: AnnotationItem, answers: dict | None, selected: Iterable[int] | None,
                     none: bool) -> list[int]:
    if answers is not None:
        raise Invalid("this is a HITL item; send 'selected' (candidate ids) or 'none', not 'answers'")
    chosen = sorted(set(selected or []))
    ids = {c.id for c in item.candidates}
    if not none and not chosen:
        raise Invalid("select at least one candidate, or send none=true (\"I wouldn't share any of these\")")
    if none and chosen:
        raise Invalid("'none' (I wouldn't share any of these) cannot be combined with selected candidates")
    stray = [c for c in chosen if c not in ids]
    if stray:
        raise Invalid(f"candidate {stray[0]} is not part of this item; expected some of {sorted(ids)}")
    return chosen
