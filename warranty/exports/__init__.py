"""Long exports as background jobs: a finance user asks for a whole-store CSV or XLSX, a
worker writes it to a file (streamed, constant memory), the dashboard shows its progress and
then a download link (models: the job table; services: start, claim, run, download)."""
