"""The gesture catalog format, validated with pydantic.

A library is a folder:

    <library>/
      gestures/<id>.yaml        one gesture per file: metadata, takes, optional authoring spec
      clips/<id>/<take>.npz     the built clips (SMPL-X npz, `gesticulator.io.save_npz`)

A gesture file (schema_version 1):

    schema_version: 1
    id: thumbs_up                       # snake_case, stable, equals the file name
    category: emblem                    # deictic | iconic | metaphoric | emblem | beat | adaptor
    description: Right fist raised to chest height, thumb pointing up.   # the movement
    meaning: approval, something is good or went well                    # what it conveys
    triggers: [great, good job, well done, awesome, ...]                 # words/phrases
    examples: ["That went really well.", ...]                            # sentences
    not_examples: ["Good morning, everyone.", ...]   # optional: a trigger, but not this gesture
    handedness: right                   # right | left | both | none (head-only)
    body_parts: [right_arm, right_hand] # from gesticulator.motion.skeleton.BODY_PARTS
    phases: {prep_start: 0.0, stroke_start: 0.3, apex: 0.45, stroke_end: 0.8, retract_end: 1.3}
    takes:
      - id: a
        clip: clips/thumbs_up/a.npz     # relative to the library folder
        source: authored from gestures/thumbs_up.yaml
        license: Apache-2.0
        phases: {...}                   # optional, when a take's timing differs
    author: {...}                       # optional authoring spec, compiled by `library build`

Phase marks are seconds from the clip's first frame, in order
prep_start <= stroke_start <= apex <= stroke_end <= retract_end.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gesticulator.errors import GesticulatorError
from gesticulator.motion.skeleton import BODY_PARTS

SCHEMA_VERSION = 1
Category = Literal["deictic", "iconic", "metaphoric", "emblem", "beat", "adaptor"]
Handedness = Literal["right", "left", "both", "none"]
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class CatalogError(GesticulatorError):
    """A gesture file or library folder that does not follow the schema."""


class Phases(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prep_start: float = Field(ge=0)
    stroke_start: float = Field(ge=0)
    apex: float = Field(ge=0)
    stroke_end: float = Field(ge=0)
    retract_end: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Phases:
        marks = [self.prep_start, self.stroke_start, self.apex, self.stroke_end, self.retract_end]
        if any(b < a - 1e-6 for a, b in zip(marks, marks[1:], strict=False)):
            raise ValueError(
                "phase marks must be ordered prep_start <= stroke_start <= apex <= stroke_end <= retract_end"
            )
        return self

    def shifted(self, seconds: float) -> Phases:
        return Phases(**{k: max(0.0, v + seconds) for k, v in self.model_dump().items()})

    def scaled(self, factor: float) -> Phases:
        return Phases(**{k: v * factor for k, v in self.model_dump().items()})


class Take(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    clip: str  # path relative to the library folder
    source: str
    license: str
    side: Literal["right", "left", "both", "none"] | None = None  # defaults to the gesture's handedness
    phases: Phases | None = None  # defaults to the gesture's phases

    @field_validator("id")
    @classmethod
    def _take_id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", v):
            raise ValueError(f"take id {v!r} must be lower-case letters, digits and underscores")
        return v


class Gesture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    id: str
    category: Category
    description: str = Field(min_length=3)
    meaning: str = Field(min_length=3)
    triggers: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    #: Counter-examples: sentences with a trigger word in a sense the gesture does not fit ("I'm a
    #: big fan of jazz" for big_wide). Searched like examples but never raising the gesture's score;
    #: the planner weighs a sentence's likeness to them against its likeness to the examples.
    not_examples: list[str] = Field(default_factory=list)
    handedness: Handedness = "right"
    body_parts: list[str] = Field(min_length=1)
    phases: Phases
    takes: list[Take] = Field(default_factory=list)
    author: dict[str, Any] | None = None  # authoring spec (gesticulator.library.authoring)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"unsupported schema_version {v}; this gesticulator reads version {SCHEMA_VERSION}"
            )
        return v

    @field_validator("id")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError(f"id {v!r} must be snake_case (a-z, 0-9, _; starting with a letter)")
        return v

    @field_validator("body_parts")
    @classmethod
    def _known_parts(cls, v: list[str]) -> list[str]:
        unknown = [p for p in v if p not in BODY_PARTS]
        if unknown:
            raise ValueError(f"unknown body part(s) {unknown}; known: {', '.join(sorted(BODY_PARTS))}")
        return v

    @model_validator(mode="after")
    def _unique_takes(self) -> Gesture:
        ids = [t.id for t in self.takes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate take id(s) {dupes}")
        return self

    def take(self, take_id: str | None = None) -> Take:
        if not self.takes:
            raise CatalogError(f"gesture {self.id!r} has no takes", "run `gesticulator library build`")
        if take_id is None:
            return self.takes[0]
        for t in self.takes:
            if t.id == take_id:
                return t
        raise CatalogError(
            f"gesture {self.id!r} has no take {take_id!r} (takes: {', '.join(t.id for t in self.takes)})"
        )

    def phases_of(self, take: Take) -> Phases:
        return take.phases or self.phases

    def search_texts(self) -> list[str]:
        """The texts the index embeds for this gesture."""
        return [self.description, self.meaning, *self.triggers, *self.examples, *self.not_examples]


def format_validation_error(path: Path | str, err: ValidationError) -> str:
    """One line naming the file and the first offending field."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    extra = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: field '{where}': {first['msg']}{extra}"


def parse_gesture(data: Any, path: Path | str) -> Gesture:
    """Validate one gesture file's parsed YAML; errors name the file and field."""
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: a gesture file must be a YAML mapping", "see motion_library/README.md")
    try:
        gesture = Gesture.model_validate(data)
    except ValidationError as e:
        raise CatalogError(format_validation_error(path, e), "fix the gesture file") from None
    stem = Path(path).stem
    if Path(path).suffix in (".yaml", ".yml") and stem != gesture.id:
        raise CatalogError(
            f"{path}: field 'id': {gesture.id!r} does not match the file name {stem!r}", "rename one"
        )
    return gesture
