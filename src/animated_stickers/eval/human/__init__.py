"""Human evaluation (paper 4.1) and HITL filtering (paper 2.3): questions, storage, web app, reports."""
