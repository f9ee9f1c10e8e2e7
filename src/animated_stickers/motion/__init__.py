"""Motion as the run-time and the data pipeline share it: words.py (the motion vocabulary, the motion
words measured in a clip, the motion a prompt asks for) and procedural.py (looping rigid and local
transforms of a still: procedural training clips, and the prompt's motion applied at sampling time).
Below data/ and sampling/, which both import it; it imports only rgba.py of the project.
"""
