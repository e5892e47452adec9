"""Request bodies and the catalogue's vocabularies. Every string and number is bounded, so a bad
input is a 422, never a 5xx. The estimate's quantities are checked by the service (1–999), so
that its refusal names the item's code."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,39}$"
MAX_QTY = 999
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
CLASS_B_DEFAULT_BP = 1000  # 乙: 10% self-pay unless the institution sets its own share


class Category(StrEnum):
    exam = "exam"  # 检查
    lab = "lab"  # 检验
    drug = "drug"  # 药品
    treatment = "treatment"  # 治疗
    surgery = "surgery"  # 手术
    bed = "bed"  # 床位
    registration = "registration"  # 挂号
    other = "other"  # 其他


CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "exam": ("检查", "Exams"), "lab": ("检验", "Lab tests"), "drug": ("药品", "Drugs"),
    "treatment": ("治疗", "Treatment"), "surgery": ("手术", "Surgery"), "bed": ("床位", "Beds"),
    "registration": ("挂号", "Registration"), "other": ("其他", "Other"),
}


class InsuranceClass(StrEnum):
    a = "a"  # 甲类: within the insurance list, no self-pay share
    b = "b"  # 乙类: the patient pays a share first
    c = "c"  # 丙类: outside the list, all self-paid


CLASS_NAMES: dict[str, tuple[str, str]] = {"a": ("甲类", "Class A"), "b": ("乙类", "Class B"),
                                           "c": ("丙类", "Class C")}
CLASS_FIXED_BP = {"a": 0, "c": 10_000}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EstimateLine(_In):
    code: Code
    qty: int = Field(default=1, ge=-1_000_000, le=1_000_000, description="1 to 999 (checked by the service)")


class EstimateCreate(_In):
    institution_id: str = Field(min_length=1, max_length=36)
    items: list[EstimateLine] = Field(default_factory=list, max_length=100)
    packages: list[Code] = Field(default_factory=list, max_length=20)

    def package_codes(self) -> list[str]:
        return list(dict.fromkeys(self.packages))


class SettingsUpdate(_In):
    institution_id: str = Field(min_length=1, max_length=36)
    class_b_self_pay_bp: int = Field(ge=0, le=10_000, description="乙类 self-pay share in basis points (1000 = 10%)")
