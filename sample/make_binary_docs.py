"""Generate the binary documents of the Northwind Labs sample corpus.

Writes, relative to this script:

    docs/product/ledgerline-architecture.docx   (python-docx)
    docs/people/benefits-summary.pdf            (fpdf2, 3 pages, real text layer)
    docs/product/roadmap-2026.pptx              (python-pptx)

Requires python-docx, python-pptx and fpdf2. fpdf2 is not a project
dependency; one way to run this without touching the project venv:

    pip install --target /tmp/fpdfpkg fpdf2
    PYTHONPATH=/tmp/fpdfpkg .venv/bin/python sample/make_binary_docs.py

The script can be run again at any time; it overwrites the three files.
Metadata dates are fixed so that reruns produce the same content.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

DOCS = Path(__file__).resolve().parent / "docs"
FIXED_DATE = dt.datetime(2026, 1, 15, 9, 0, 0)


# --------------------------------------------------------------------------
# DOCX: Ledgerline architecture
# --------------------------------------------------------------------------

ARCHITECTURE = [
    ("title", "Ledgerline architecture overview"),
    ("p", "Owner: Marta Kowalski (CTO). Last reviewed: 15 January 2026. "
          "This document gives new engineers and curious non-engineers a map of the services "
          "that make up Ledgerline, who owns them and how data flows between them. Details of "
          "each service live in the README of its folder in the northwind/ledgerline monorepo."),
    ("h1", "Big picture"),
    ("p", "Ledgerline runs entirely in AWS, region eu-central-1 (Frankfurt), because our "
          "customers expect their invoice data to stay in the EU. All services run as containers "
          "on one Kubernetes cluster (Amazon EKS) per environment: staging and production. "
          "Deployments are done by Argo CD; engineers trigger production deploys with the nwctl "
          "command line tool. Metrics, logs and traces go to Datadog."),
    ("p", "The system is deliberately small: one main API, a pool of background workers, a few "
          "helper services, one PostgreSQL database and one Redis instance. We prefer adding a "
          "module to an existing service over adding a new service."),
    ("h1", "Services"),
    ("h2", "billing-api"),
    ("p", "billing-api is the heart of Ledgerline and is owned by the Payments team, led by "
          "Priya Raman. It is written in Go and holds the core domain: customers, invoices, line "
          "items, taxes, payments and dunning (payment reminders). It serves the public REST API "
          "(v2, documented at the developer portal), the internal API used by the other services, "
          "and outgoing webhooks to customer systems."),
    ("p", "billing-api is the only service allowed to write to the invoice and payment tables. "
          "Every other service that wants to create or change an invoice has to call it. In "
          "production it runs with 6 replicas behind the load balancer; the latency target is "
          "250 ms at p95 for API requests."),
    ("h2", "Ingest workers"),
    ("p", "The ingest workers are owned by the Ingest team (lead: Daniel Brooks) and written in "
          "Python. Customers upload CSV and Excel files, ERP exports (DATEV, SAP Business One, "
          "Lexware) and bank statements in CAMT.053 format. Uploads land in S3, and a message on "
          "an SQS queue starts a job. A worker parses the file, validates it, and turns it into "
          "draft invoices or payment matches by calling the internal billing-api endpoints."),
    ("p", "Workers autoscale between 2 and 20 pods based on queue depth. A typical upload of "
          "500 invoice rows is processed in under a minute; the target is 2 minutes at p95. A "
          "job that fails three times is moved to a dead-letter queue and shows up in the "
          "#ingest-alerts channel."),
    ("h2", "web-app"),
    ("p", "The web-app is the React and TypeScript single-page application our customers log "
          "in to. It is owned by the Frontend team (lead: Oskar Lindqvist), served from S3 via "
          "CloudFront, and talks only to the public billing-api; it has no backend of its own."),
    ("h2", "Helper services"),
    ("p", "doc-renderer (Payments team) renders invoice PDFs and the structured e-invoice formats "
          "XRechnung and ZUGFeRD. notifier (Platform team) sends e-mails through Postmark and "
          "retries failed webhooks with exponential backoff for up to 24 hours."),
    ("h1", "Data stores"),
    ("h2", "PostgreSQL 16"),
    ("p", "All persistent business data lives in one PostgreSQL 16 database called ledgerline on "
          "Amazon RDS: a Multi-AZ primary plus one read replica. Each service has its own schema "
          "(billing, ingest, notifier) and its own database user; services do not read other "
          "services' schemas. The read replica serves reporting and the customer-facing exports."),
    ("p", "Point-in-time recovery is enabled with 14 days of retention, and a nightly snapshot is "
          "copied to a second region (eu-west-1) and kept for 35 days. Schema migrations are "
          "run separately from deploys and must be backward compatible."),
    ("h2", "Redis"),
    ("p", "A single Redis 7 instance (Amazon ElastiCache) is used for three things: caching "
          "customer settings and tax tables, API rate limiting (600 requests per minute per API "
          "key), and short-lived locks that stop two ingest workers from processing the same "
          "upload. Redis is never the source of truth; it can be flushed without data loss, at "
          "the cost of a few minutes of slower responses."),
    ("h2", "S3"),
    ("p", "Uploaded files and generated invoice PDFs are stored in S3. Invoice documents are kept "
          "for 10 years, as German bookkeeping rules (GoBD) require; uploads are deleted after "
          "90 days."),
    ("h1", "How an invoice is created"),
    ("p", "1. A customer uploads an ERP export in the web-app. 2. The file goes to S3 and an "
          "ingest job is queued. 3. An ingest worker takes a Redis lock on the upload, parses it "
          "and calls billing-api to create draft invoices. 4. billing-api validates taxes and "
          "numbering and stores the drafts in PostgreSQL. 5. When the customer approves, "
          "billing-api asks doc-renderer for the PDF and e-invoice XML, and notifier sends them "
          "to the invoice recipient."),
    ("h1", "Ownership summary"),
    ("table", [
        ("Component", "Owning team", "Lead"),
        ("billing-api", "Payments", "Priya Raman"),
        ("doc-renderer", "Payments", "Priya Raman"),
        ("ingest workers", "Ingest", "Daniel Brooks"),
        ("web-app", "Frontend", "Oskar Lindqvist"),
        ("notifier, EKS, RDS, Redis", "Platform", "Tomás Herrera"),
    ]),
    ("p", "The owning team reviews every change to its components, maintains the runbooks and "
          "handles SEV3 tickets for them. Production incidents are handled by the shared on-call "
          "rotation regardless of ownership."),
]


def make_docx(path: Path) -> None:
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.title = "Ledgerline architecture overview"
    props.author = "Marta Kowalski"
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = "Marta Kowalski"

    for kind, content in ARCHITECTURE:
        if kind == "title":
            doc.add_heading(content, level=0)
        elif kind == "h1":
            doc.add_heading(content, level=1)
        elif kind == "h2":
            doc.add_heading(content, level=2)
        elif kind == "p":
            doc.add_paragraph(content)
        elif kind == "table":
            header, *rows = content
            table = doc.add_table(rows=1, cols=len(header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, header):
                cell.text = text
            for row in rows:
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))


# --------------------------------------------------------------------------
# PDF: benefits summary (core fonts, Latin-1 text only)
# --------------------------------------------------------------------------

BENEFITS_PAGES = [
    ("Health insurance", [
        ("Statutory health insurance (Germany)",
         "Everyone employed in Germany is covered by statutory health insurance "
         "(gesetzliche Krankenversicherung) with the public insurer of their choice. Northwind "
         "pays the employer half of the contribution, as the law requires, and this is handled "
         "automatically through payroll. If you are privately insured, Northwind pays the "
         "employer subsidy up to the legal maximum; send your insurer's certificate to People."),
        ("Northwind Plus supplementary cover",
         "On top of that, Northwind pays for a supplementary group policy for every employee in "
         "Germany, at no cost to you. It covers: dental treatment and cleanings up to 1,000 EUR "
         "per year; glasses or contact lenses up to 300 EUR every two years; a single or double "
         "room and chief physician treatment in hospital. Family members can be added at group "
         "rates, paid by you through payroll."),
        ("Colleagues outside Germany",
         "Colleagues employed through our employer-of-record partner in Spain, Portugal, France, "
         "the UK, Sweden and Türkiye get the local statutory cover plus a private plan of "
         "comparable value. In the USA, Northwind pays 90% of the premium for medical, dental "
         "and vision insurance for employees and 50% for dependants."),
        ("Mental health",
         "Everyone can book up to 8 sessions per year with a licensed therapist or coach through "
         "Clearmind, anonymously and free of charge. Northwind never sees who used it."),
        ("How to enrol",
         "Enrol in Northwind Plus within your first 30 days using the form in Personio. After "
         "that, changes are possible once a year in November or after a life event such as a "
         "marriage or a birth."),
    ]),
    ("Pension", [
        ("Company pension with a 5% match",
         "Northwind offers an occupational pension (betriebliche Altersvorsorge) for everyone "
         "employed in Germany. You choose how much of your gross salary to pay in through salary "
         "conversion, and Northwind matches your contribution one to one up to 5% of your gross "
         "salary. The statutory 15% employer subsidy is included in the match, not paid on top."),
        ("Example",
         "With a gross salary of 60,000 EUR per year, if you contribute 5% (3,000 EUR), Northwind "
         "adds another 3,000 EUR, so 6,000 EUR per year go into your pension. If you contribute "
         "2% (1,200 EUR), Northwind adds 1,200 EUR. Contributions above 5% are possible but are "
         "not matched. Your own contribution is paid before tax and social security, within the "
         "legal limits, so the net cost to you is noticeably lower than the amount paid in."),
        ("Vesting and provider",
         "The match vests immediately: the money is yours from the first month, even if you leave "
         "Northwind. The plan is a direct insurance (Direktversicherung) with Allgemeine Vorsorge "
         "AG; you receive a yearly statement from them by post."),
        ("Enrolment",
         "Enrolment is not automatic. Join at any time through Personio; contributions start with "
         "the next payroll. You can change your contribution twice a year, on 1 January and "
         "1 July, and pause it at any time."),
        ("Outside Germany",
         "In the UK, Northwind pays 5% of salary into the workplace pension under auto-enrolment. "
         "In the USA, the 401(k) plan has a 5% match. In other countries the employer-of-record "
         "partner provides the local equivalent; ask People for details."),
    ]),
    ("Parental leave and other benefits", [
        ("16 weeks of paid parental leave",
         "Every new parent at Northwind gets 16 weeks of parental leave at full pay, regardless "
         "of gender and whether the child is born, adopted or joins through surrogacy. You can "
         "take the 16 weeks in up to two blocks within the first 12 months after the child "
         "arrives. In Germany, Northwind tops up the statutory parental allowance (Elterngeld) "
         "to your full net salary for these 16 weeks."),
        ("Maternity protection",
         "For birth parents in Germany, the statutory maternity protection period (6 weeks before "
         "and 8 weeks after the birth) is paid in full as required by law and comes in addition "
         "to the 16 weeks."),
        ("Eligibility and returning",
         "Parental leave at full pay is available after your probation period of 6 months. When "
         "you come back, you can work 80% of your hours for the first 4 weeks at full pay. Tell "
         "Lena Fischer about planned leave as early as you are comfortable; in Germany, "
         "Elternzeit must be requested in writing at least 7 weeks before it starts."),
        ("Getting around",
         "Northwind pays the full Deutschlandticket for everyone in Germany, or a JobRad bike "
         "lease through salary conversion if you prefer cycling."),
        ("Sport and wellbeing",
         "We subsidise an Urban Sports Club membership with 35 EUR per month, or any other gym "
         "membership up to the same amount."),
        ("Questions",
         "Questions about any benefit go to Lena Fischer (Head of People) or #people-questions on "
         "Slack. This summary is not a contract; the benefit policies in Personio are binding."),
    ]),
]


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    total = len(BENEFITS_PAGES)

    class BenefitsPDF(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", "B", 9)
            self.set_text_color(90, 90, 90)
            self.cell(0, 6, "Northwind Labs GmbH - Benefits summary 2026",
                      new_x="LMARGIN", new_y="NEXT")
            self.ln(4)
            self.set_text_color(0, 0, 0)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.set_text_color(90, 90, 90)
            self.cell(0, 8, f"Page {self.page_no()} of {total} - owner: Lena Fischer (People) "
                            "- updated 5 January 2026", align="C")

    pdf = BenefitsPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE.replace(tzinfo=dt.timezone.utc))
    pdf.set_title("Northwind Labs benefits summary 2026")
    pdf.set_author("Lena Fischer")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 15, 20)

    for title, sections in BENEFITS_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 18)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for heading, body in sections:
            pdf.set_font("Helvetica", "B", 12)
            pdf.cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(0, 5.2, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    if pdf.page_no() != total:
        raise SystemExit(f"benefits PDF has {pdf.page_no()} pages, expected {total}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


# --------------------------------------------------------------------------
# PPTX: roadmap 2026
# --------------------------------------------------------------------------

ROADMAP_SLIDES = [
    ("Three themes for 2026",
     "Why these three: the German e-invoicing obligation is the biggest reason customers call "
     "us, late payments are their biggest pain, and our largest deals in 2025 were lost on "
     "multi-entity support and SSO.", [
        "E-invoicing everywhere: issue XRechnung and ZUGFeRD from every plan, Peppol for NL and BE",
        "Get paid faster: match bank payments automatically, smarter dunning",
        "Ready for bigger customers: multiple legal entities, SAML SSO, audit log",
        "Reliability stays first: no roadmap item ships without runbooks and alerts",
    ]),
    ("Quarter by quarter",
     "Payments owns e-invoicing and dunning, Ingest owns the bank matching and DATEV work, "
     "Frontend and Platform share multi-entity and SSO. Quarters are targets, not promises; "
     "we re-plan at the start of each quarter.", [
        "Q1: ZUGFeRD 2.3 issuing generally available; Peppol pilot with 20 Dutch customers",
        "Q2: Open-banking payment matching in beta; new DATEV export importer",
        "Q3: Multi-entity accounts; SAML single sign-on for customer admins",
        "Q4: Customer audit log; dunning v2; readiness for the German e-invoicing "
        "obligation from 1 January 2027",
    ]),
    ("Goals, and what we are not doing",
     "Saying no is part of the plan. If a customer asks for something on the not-doing list, "
     "log it in HubSpot and tell them it is not planned for 2026.", [
        "Goal: 2,000 paying customers by December 2026 (about 1,400 today)",
        "Goal: 95% of uploads turned into draft invoices within 2 minutes",
        "Goal: fewer than 4 SEV1 incidents in the year",
        "Not in 2026: native mobile app, US sales tax, a full accounting ledger",
    ]),
]


def make_pptx(path: Path) -> None:
    from pptx import Presentation

    prs = Presentation()
    props = prs.core_properties
    props.title = "Ledgerline roadmap 2026"
    props.author = "Chloé Martin"
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = "Chloé Martin"

    title_slide = prs.slides.add_slide(prs.slide_layouts[0])
    title_slide.shapes.title.text = "Ledgerline roadmap 2026"
    title_slide.placeholders[1].text = (
        "Product all-hands, 13 January 2026\nChloé Martin, Head of Product")

    for title, notes, bullets in ROADMAP_SLIDES:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
        slide.notes_slide.notes_text_frame.text = (
            notes + " Questions about the roadmap go to #product.")
    path.parent.mkdir(parents=True, exist_ok=True)
    prs.save(str(path))


def main() -> None:
    outputs = {
        DOCS / "product" / "ledgerline-architecture.docx": make_docx,
        DOCS / "people" / "benefits-summary.pdf": make_pdf,
        DOCS / "product" / "roadmap-2026.pptx": make_pptx,
    }
    for path, make in outputs.items():
        make(path)
        print(f"wrote {path.relative_to(DOCS.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
