"""Compact decoding tables of the SunSpec models heliod reads.

Source: the SunSpec Information Model definitions (JSON, SunSpec Alliance `models`
repository, as shipped in pysunspec2 1.3: model_1, model_101..103, model_111..113,
model_201..204, model_211..214 and model_701). Models of one family share one layout
and differ only in their id; tests/adapters/modbus/test_sunspec_tables.py checks every
offset and type below against those JSON files.

Each table lists the points after the two header registers (ID, L) in order, as
`Name:type[:scale_factor_point[:unit]]`; `{a,b}` expands to one point per suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# SunSpec type → (register type, width in registers, raw value meaning "not implemented").
# float32 NaN is handled by the decoder; strings are text, "pad" is skipped.
SUNSPEC_TYPES: dict[str, tuple[str, int, int | None]] = {
    "u16": ("u16", 1, 0xFFFF),
    "i16": ("i16", 1, 0x8000),
    "a16": ("u16", 1, 0),  # acc16: 0 = not accumulated
    "e16": ("u16", 1, 0xFFFF),
    "b16": ("u16", 1, 0xFFFF),
    "u32": ("u32", 2, 0xFFFFFFFF),
    "i32": ("i32", 2, 0x80000000),
    "a32": ("u32", 2, 0),  # acc32: 0 = not accumulated
    "e32": ("u32", 2, 0xFFFFFFFF),
    "b32": ("u32", 2, 0xFFFFFFFF),
    "u64": ("u64", 4, 0xFFFFFFFFFFFFFFFF),
    "i64": ("i64", 4, 0x8000000000000000),
    "a64": ("u64", 4, 0),
    "f32": ("f32", 2, None),
    "sf": ("i16", 1, 0x8000),
    "pad": ("u16", 1, None),
}

_COMMON = "Mn:s16 Md:s16 Opt:s8 Vr:s8 SN:s16 DA:u16 Pad:pad"

_INVERTER_INT = """
A:u16:A_SF:A Aph{A,B,C}:u16:A_SF:A A_SF:sf
PPVph{AB,BC,CA}:u16:V_SF:V PhVph{A,B,C}:u16:V_SF:V V_SF:sf
W:i16:W_SF:W W_SF:sf Hz:u16:Hz_SF:Hz Hz_SF:sf VA:i16:VA_SF:VA VA_SF:sf
VAr:i16:VAr_SF:var VAr_SF:sf PF:i16:PF_SF:Pct PF_SF:sf WH:a32:WH_SF:Wh WH_SF:sf
DCA:u16:DCA_SF:A DCA_SF:sf DCV:u16:DCV_SF:V DCV_SF:sf DCW:i16:DCW_SF:W DCW_SF:sf
Tmp{Cab,Snk,Trns,Ot}:i16:Tmp_SF:C Tmp_SF:sf St:e16 StVnd:e16
Evt1:b32 Evt2:b32 EvtVnd{1,2,3,4}:b32
"""

_INVERTER_FLOAT = """
A:f32::A Aph{A,B,C}:f32::A PPVph{AB,BC,CA}:f32::V PhVph{A,B,C}:f32::V
W:f32::W Hz:f32::Hz VA:f32::VA VAr:f32::var PF:f32::Pct WH:f32::Wh
DCA:f32::A DCV:f32::V DCW:f32::W Tmp{Cab,Snk,Trns,Ot}:f32::C St:e16 StVnd:e16
Evt1:b32 Evt2:b32 EvtVnd{1,2,3,4}:b32
"""

_METER_INT = """
A:i16:A_SF:A Aph{A,B,C}:i16:A_SF:A A_SF:sf
PhV:i16:V_SF:V PhVph{A,B,C}:i16:V_SF:V PPV:i16:V_SF:V PPVph{AB,BC,CA}:i16:V_SF:V V_SF:sf
Hz:i16:Hz_SF:Hz Hz_SF:sf W{,phA,phB,phC}:i16:W_SF:W W_SF:sf
VA{,phA,phB,phC}:i16:VA_SF:VA VA_SF:sf VAR{,phA,phB,phC}:i16:VAR_SF:var VAR_SF:sf
PF{,phA,phB,phC}:i16:PF_SF:Pct PF_SF:sf
TotWhExp{,PhA,PhB,PhC}:a32:TotWh_SF:Wh TotWhImp{,PhA,PhB,PhC}:a32:TotWh_SF:Wh TotWh_SF:sf
TotVAhExp{,PhA,PhB,PhC}:a32:TotVAh_SF:VAh TotVAhImp{,PhA,PhB,PhC}:a32:TotVAh_SF:VAh
TotVAh_SF:sf TotVArhImpQ1{,PhA,PhB,PhC}:a32:TotVArh_SF:varh
TotVArhImpQ2{,PhA,PhB,PhC}:a32:TotVArh_SF:varh TotVArhExpQ3{,PhA,PhB,PhC}:a32:TotVArh_SF:varh
TotVArhExpQ4{,PhA,PhB,PhC}:a32:TotVArh_SF:varh TotVArh_SF:sf Evt:b32
"""

_METER_FLOAT = """
A:f32::A Aph{A,B,C}:f32::A PhV:f32::V PhVph{A,B,C}:f32::V PPV:f32::V PPVph{AB,BC,CA}:f32::V
Hz:f32::Hz W{,phA,phB,phC}:f32::W VA{,phA,phB,phC}:f32::VA VAR{,phA,phB,phC}:f32::var
PF{,phA,phB,phC}:f32::PF TotWhExp{,PhA,PhB,PhC}:f32::Wh TotWhImp{,PhA,PhB,PhC}:f32::Wh
TotVAhExp{,PhA,PhB,PhC}:f32::VAh TotVAhImp{,PhA,PhB,PhC}:f32::VAh
TotVArhImpQ1{,phA,phB,phC}:f32::varh TotVArhImpQ2{,phA,phB,phC}:f32::varh
TotVArhExpQ3{,phA,phB,phC}:f32::varh TotVArhExpQ4{,phA,phB,phC}:f32::varh Evt:b32
"""

_DER_AC = """
ACType:e16 St:e16 InvSt:e16 ConnSt:e16 Alrm:b32 DERMode:b32
W:i16:W_SF:W VA:i16:VA_SF:VA Var:i16:Var_SF:var PF:i16:PF_SF A:i16:A_SF:A
LLV:u16:V_SF:V LNV:u16:V_SF:V Hz:u32:Hz_SF:Hz
TotWhInj:u64:TotWh_SF:Wh TotWhAbs:u64:TotWh_SF:Wh
TotVarhInj:u64:TotVarh_SF:varh TotVarhAbs:u64:TotVarh_SF:varh
Tmp{Amb,Cab,Snk,Trns,Sw,Ot}:i16:Tmp_SF:C
WL1:i16:W_SF:W VAL1:i16:VA_SF:VA VarL1:i16:Var_SF:var PFL1:i16:PF_SF AL1:i16:A_SF:A
VL1L2:u16:V_SF:V VL1:u16:V_SF:V TotWhInjL1:u64:TotWh_SF:Wh TotWhAbsL1:u64:TotWh_SF:Wh
TotVarhInjL1:u64:TotVarh_SF:varh TotVarhAbsL1:u64:TotVarh_SF:varh
WL2:i16:W_SF:W VAL2:i16:VA_SF:VA VarL2:i16:Var_SF:var PFL2:i16:PF_SF AL2:i16:A_SF:A
VL2L3:u16:V_SF:V VL2:u16:V_SF:V TotWhInjL2:u64:TotWh_SF:Wh TotWhAbsL2:u64:TotWh_SF:Wh
TotVarhInjL2:u64:TotVarh_SF:varh TotVarhAbsL2:u64:TotVarh_SF:varh
WL3:i16:W_SF:W VAL3:i16:VA_SF:VA VarL3:i16:Var_SF:var PFL3:i16:PF_SF AL3:i16:A_SF:A
VL3L1:u16:V_SF:V VL3:u16:V_SF:V TotWhInjL3:u64:TotWh_SF:Wh TotWhAbsL3:u64:TotWh_SF:Wh
TotVarhInjL3:u64:TotVarh_SF:varh TotVarhAbsL3:u64:TotVarh_SF:varh
ThrotPct:u16::Pct ThrotSrc:b32
A_SF:sf V_SF:sf Hz_SF:sf W_SF:sf PF_SF:sf VA_SF:sf Var_SF:sf TotWh_SF:sf TotVarh_SF:sf Tmp_SF:sf
MnAlrmInfo:s32
"""


@dataclass(frozen=True, slots=True)
class Point:
    """One SunSpec point: offset from the model's ID register, type, scale factor, unit."""

    name: str
    offset: int
    type: str  # a SUNSPEC_TYPES key, or "string"
    width: int
    sf: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """A model family's points and which of them feed heliod's reading fields."""

    family: str
    points: tuple[Point, ...]
    fields: tuple[tuple[str, str], ...]  # (reading field, point name)
    by_name: dict[str, Point] = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.points})

    def point(self, name: str) -> Point:
        """The point called `name`."""
        return self.by_name[name]


def _expand(token: str) -> list[str]:
    match = re.fullmatch(r"([^{]*)\{([^}]*)\}(.*)", token)
    if match is None:
        return [token]
    head, choices, tail = match.groups()
    return [f"{head}{choice}{tail}" for choice in choices.split(",")]


def parse_points(table: str) -> tuple[Point, ...]:
    """Points of a compact table, offsets counted from the model's ID register."""
    points: list[Point] = []
    offset = 2  # ID and L come first
    for token in table.split():
        for item in _expand(token):
            name, type_, *rest = item.split(":")
            sf = rest[0] if rest else ""
            unit = rest[1] if len(rest) > 1 else ""
            if type_.startswith("s") and type_[1:].isdigit():
                width, type_ = int(type_[1:]), "string"
            else:
                width = SUNSPEC_TYPES[type_][1]
            points.append(Point(name, offset, type_, width, sf, unit))
            offset += width
    return tuple(points)


_INVERTER_FIELDS = (
    ("energy_wh", "WH"),
    ("power_w", "W"),
    ("apparent_power_va", "VA"),
    ("reactive_power_var", "VAr"),
    ("frequency_hz", "Hz"),
    ("dc_power_w", "DCW"),
    ("temperature_c", "TmpCab"),
)
_METER_FIELDS = (
    ("energy_wh", "TotWhExp"),
    ("energy_import_wh", "TotWhImp"),
    ("power_w", "W"),
    ("apparent_power_va", "VA"),
    ("reactive_power_var", "VAR"),
    ("frequency_hz", "Hz"),
)
_DER_FIELDS = (
    ("energy_wh", "TotWhInj"),
    ("energy_import_wh", "TotWhAbs"),
    ("power_w", "W"),
    ("apparent_power_va", "VA"),
    ("reactive_power_var", "Var"),
    ("frequency_hz", "Hz"),
    ("temperature_c", "TmpCab"),
)

COMMON = ModelLayout("common", parse_points(_COMMON), ())
INVERTER_INT = ModelLayout("inverter", parse_points(_INVERTER_INT), _INVERTER_FIELDS)
INVERTER_FLOAT = ModelLayout("inverter_float", parse_points(_INVERTER_FLOAT), _INVERTER_FIELDS)
METER_INT = ModelLayout("meter", parse_points(_METER_INT), _METER_FIELDS)
METER_FLOAT = ModelLayout("meter_float", parse_points(_METER_FLOAT), _METER_FIELDS)
DER_AC = ModelLayout("der_measure_ac", parse_points(_DER_AC), _DER_FIELDS)

MODEL_LAYOUTS: dict[int, ModelLayout] = {
    1: COMMON,
    **dict.fromkeys((101, 102, 103), INVERTER_INT),
    **dict.fromkeys((111, 112, 113), INVERTER_FLOAT),
    **dict.fromkeys((201, 202, 203, 204), METER_INT),
    **dict.fromkeys((211, 212, 213, 214), METER_FLOAT),
    701: DER_AC,
}
MODEL_NAMES: dict[int, str] = {
    1: "common",
    101: "inverter single phase",
    102: "inverter split phase",
    103: "inverter three phase",
    111: "inverter single phase (float)",
    112: "inverter split phase (float)",
    113: "inverter three phase (float)",
    201: "meter single phase",
    202: "meter split phase",
    203: "meter three phase wye",
    204: "meter three phase delta",
    211: "meter single phase (float)",
    212: "meter split phase (float)",
    213: "meter three phase wye (float)",
    214: "meter three phase delta (float)",
    701: "DER AC measurement",
}
# Which model gives a device's reading, best first: inverters, then DER, then meters.
ENERGY_MODEL_PREFERENCE: tuple[int, ...] = (
    103,
    113,
    102,
    112,
    101,
    111,
    701,
    203,
    213,
    204,
    214,
    202,
    212,
    201,
    211,
)
