"""(being written: see issue 10)"""

from fastapi import APIRouter

router = APIRouter()
