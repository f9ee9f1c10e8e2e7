"""Export: looping RGBA animations as WebP/GIF/APNG/WebM files, and messenger presets that verify their limits.

formats.py (write_animation, read_frames), presets.py (export_preset, PRESETS), retime.py (frame
timing), flow.py (motion-compensated in-betweens), imaging.py (premultiplied resize, colour bleed),
palette.py (GIF/APNG palettes), cli.py (`stickers export`).
"""

from .formats import animation_bytes, read_frames, write_animation
from .presets import PRESETS, ExportReport, Preset, export_preset

__all__ = ["PRESETS", "ExportReport", "Preset", "animation_bytes", "export_preset", "read_frames", "write_animation"]
