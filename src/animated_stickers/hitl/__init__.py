"""The ensemble-of-teachers loop (paper 2.3): prompts -> teachers -> candidates -> selection -> student.

One round lives in one folder (`stickers hitl ...`, hitl/cli.py):
  ROUND/prompts/      prompts.json (bucket, motion word, subject, sticker) + one still per prompt (prompts.py)
  ROUND/teachers/     one training run per teacher recipe; teacher.json points at its model (teachers.py)
  ROUND/candidates/   <teacher>@<slot>/<prompt>.webp, 6 per prompt over the teachers (candidates.py)
  human or automatic selection into the annotation store (select.py, raters.py)
  ROUND/student/      kept candidates as prepared shards + the student's run (finetune.py)
  hitl-round-N.md     the round's report (report.py)
"""
