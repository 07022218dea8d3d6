"""Customer-facing texts in Japanese and English (pages and mails)."""

from __future__ import annotations

LANGUAGES = ("ja", "en")
DEFAULT = "ja"

# key → {language: text}; ``{name}`` placeholders are filled by ``t``.
MESSAGES: dict[str, dict[str, str]] = {
    "site.title": {"ja": "延長保証", "en": "Extended warranty"},
    "nav.plans": {"ja": "ご契約一覧", "en": "My plans"},
    "nav.logout": {"ja": "ログアウト", "en": "Sign out"},
    "nav.language": {"ja": "言語", "en": "Language"},
    "lang.ja": {"ja": "日本語", "en": "日本語"},
    "lang.en": {"ja": "English", "en": "English"},
    "form.errors": {"ja": "入力内容を確認してください。",
                    "en": "Please correct the marked fields."},
    "form.expired": {"ja": "フォームの有効期限が切れました。ページを再読み込みしてください。",
                     "en": "This form has expired. Please reload the page and try again."},
    # finding plans
    "find.title": {"ja": "ご契約の確認", "en": "Find my plans"},
    "find.intro": {"ja": "ご注文時のメールアドレスと注文番号を入力すると、"
                         "そのご注文のプランを表示します。すべてのご契約と申請の確認、"
                         "保証の申請には、メールでお送りするリンクをご利用ください。",
                   "en": "Enter the email address and order reference of a purchase to see "
                         "that order's plans. To see all your plans and claims, or to file a "
                         "claim, use the link we mail you."},
    "find.email": {"ja": "メールアドレス", "en": "Email address"},
    "find.order_ref": {"ja": "注文番号", "en": "Order reference"},
    "find.submit": {"ja": "契約を表示", "en": "Show my plans"},
    "find.no_match": {"ja": "このメールアドレスと注文番号のご契約は見つかりませんでした。",
                      "en": "We found no plans for this email address and order reference."},
    "link.title": {"ja": "リンクをメールで受け取る", "en": "Get my link by mail"},
    "link.intro": {"ja": "ログイン用のリンクをメールでお送りします。すべてのご契約と申請を確認し、"
                         "保証を申請できます。",
                   "en": "We mail you a sign-in link: it shows all your plans and claims and "
                         "lets you file a claim."},
    "link.submit": {"ja": "リンクを送信", "en": "Mail me my link"},
    "scoped.title": {"ja": "ご注文 {order} のプラン", "en": "Plans of order {order}"},
    "scoped.notice": {"ja": "注文番号で表示できるのは、このご注文のプランのみです。"
                            "すべてのご契約と申請の確認、保証の申請には、"
                            "{email} にお送りするリンクを開いてください。",
                      "en": "An order reference shows this order's plans only. To see all "
                            "your plans and claims, or to file a claim, open the link we mail "
                            "to {email}."},
    "signin.title": {"ja": "ログイン", "en": "Sign in"},
    "signin.confirm": {"ja": "{email} としてログインし、ご契約と申請を表示します。",
                       "en": "Sign in as {email} to see your plans and claims."},
    "signin.confirm_hint": {"ja": "ご自身のメールアドレスでない場合は、"
                                  "ログインせずにこのページを閉じてください。",
                            "en": "If this is not your address, close this page without "
                                  "signing in."},
    "signin.submit": {"ja": "ログインする", "en": "Sign in"},
    "signin.spent": {"ja": "このリンクはすでに使用されています。リンクは1回だけ使えます。",
                     "en": "This link has already been used: each link signs in once."},
    "signin.invalid": {"ja": "このリンクは無効か、有効期限が切れています。",
                       "en": "This link is not valid, or it has expired."},
    "signin.renew": {"ja": "このリンクの送信先のメールアドレスに、新しいリンクをお送りします。",
                     "en": "We can mail a new link to the address this link was sent to."},
    "signin.renew_submit": {"ja": "新しいリンクを送信", "en": "Mail me a new link"},
    "signin.ask": {"ja": "メールアドレスを入力すると、新しいリンクをお送りします。",
                   "en": "Enter your email address and we will mail you a new link."},
    "signin.sent_title": {"ja": "メールをご確認ください", "en": "Check your mail"},
    "signin.sent": {"ja": "このメールアドレスのご契約がある場合は、リンクをお送りしました。"
                          "リンクは7日間、1回だけ有効です。",
                    "en": "If this address has plans with us, a link to them is on its way. "
                          "It works once, for 7 days."},
    "need_link.title": {"ja": "メールのリンクからご確認ください",
                        "en": "This page needs the link we mail you"},
    "need_link.text": {"ja": "注文番号で表示できるのは、そのご注文のプランのみです。"
                             "申請とその添付ファイルの確認、保証の申請には、"
                             "{email} にお送りするリンクを開いてください。",
                       "en": "An order reference shows that order's plans only. To see claims "
                             "and their files, or to file a claim, open the link we mail to "
                             "{email}."},
    # plans
    "plans.title": {"ja": "ご契約一覧", "en": "My plans"},
    "plans.signed_in_as": {"ja": "{email} としてログイン中", "en": "Signed in as {email}"},
    "plans.none": {"ja": "ご契約はありません。", "en": "You have no plans."},
    "plans.product": {"ja": "商品", "en": "Product"},
    "plans.plan": {"ja": "プラン", "en": "Plan"},
    "plans.term": {"ja": "保証期間", "en": "Covered"},
    "plans.status": {"ja": "状態", "en": "Status"},
    "plans.claims": {"ja": "申請", "en": "Claims"},
    "plans.file_claim": {"ja": "修理・保証を申請する", "en": "File a claim"},
    "plans.months": {"ja": "{months}か月", "en": "{months} months"},
    "plans.claims_until": {"ja": "保証期間内({term_end}まで)に起きた故障・事故は"
                                 "{deadline}まで申請できます。",
                           "en": "Incidents up to {term_end} can be claimed until {deadline}."},
    "plans.no_new_claims": {"ja": "このご契約では新たな申請はお受けできません。",
                            "en": "This plan takes no new claims."},
    "coverage.standard": {"ja": "故障保証", "en": "Breakdown"},
    "coverage.accident": {"ja": "故障・事故保証", "en": "Breakdown and accidental damage"},
    "cstatus.active": {"ja": "有効", "en": "Active"},
    "cstatus.cancelled": {"ja": "解約済み", "en": "Cancelled"},
    "cstatus.expired": {"ja": "期間満了", "en": "Expired"},
    "cstatus.fulfilled": {"ja": "保証履行済み", "en": "Fulfilled"},
    # claim form
    "claim.new_title": {"ja": "修理・保証の申請", "en": "File a claim"},
    "claim.resubmit_title": {"ja": "申請内容の追加・修正", "en": "Add information to your claim"},
    "claim.incident_date": {"ja": "故障・事故の発生日", "en": "Date of the incident"},
    "claim.incident_hint": {"ja": "例: 2026-05-01", "en": "For example 2026-05-01"},
    "claim.failure_type": {"ja": "内容", "en": "What happened"},
    "failure.breakdown": {"ja": "故障(機械的・電気的な不具合)",
                          "en": "Breakdown (mechanical or electrical failure)"},
    "failure.accident": {"ja": "事故による破損(落下・水濡れなど)",
                         "en": "Accidental damage (drops, spills, ...)"},
    "claim.description": {"ja": "状況の説明", "en": "Describe what happened"},
    "claim.estimated_amount": {"ja": "修理見積額(任意)", "en": "Repair estimate (optional)"},
    "claim.estimated_hint": {"ja": "見積書がある場合は金額を入力してください。",
                             "en": "If you have a repair quote, enter its amount."},
    "claim.files": {"ja": "写真・書類", "en": "Photos or documents"},
    "claim.files_hint": {"ja": "JPEG・PNG・WebP・HEICの写真またはPDF、最大5点・各10MBまで。",
                         "en": "JPEG, PNG, WebP or HEIC photos or PDFs: up to 5, 10 MB each."},
    "claim.submit": {"ja": "申請する", "en": "Send claim"},
    "claim.resubmit": {"ja": "情報を送信する", "en": "Send the information"},
    "claim.title": {"ja": "申請 {claim}", "en": "Claim {claim}"},
    "claim.status": {"ja": "現在の状態", "en": "Status"},
    "claim.filed": {"ja": "申請日", "en": "Filed"},
    "claim.product": {"ja": "商品", "en": "Product"},
    "claim.timeline": {"ja": "経過", "en": "Timeline"},
    "claim.reason": {"ja": "理由", "en": "Reason"},
    "claim.info_needed": {"ja": "追加の情報をお願いします", "en": "We need more information"},
    "claim.decision": {"ja": "対応", "en": "Decision"},
    "claim.paid": {"ja": "お支払い", "en": "Payout"},
    "claim.attachments": {"ja": "添付ファイル", "en": "Attachments"},
    "claim.no_files": {"ja": "添付ファイルはありません。", "en": "No files attached."},
    "claim.back": {"ja": "ご契約一覧へ戻る", "en": "Back to my plans"},
    "status.submitted": {"ja": "受付", "en": "Submitted"},
    "status.in_review": {"ja": "審査中", "en": "In review"},
    "status.info_requested": {"ja": "追加情報のお願い", "en": "More information needed"},
    "status.approved": {"ja": "承認", "en": "Approved"},
    "status.denied": {"ja": "対象外", "en": "Denied"},
    "status.paid": {"ja": "支払い済み", "en": "Paid"},
    "status.closed": {"ja": "完了", "en": "Closed"},
    "event.submitted": {"ja": "申請を受け付けました", "en": "Claim filed"},
    "event.info_provided": {"ja": "追加情報を受け付けました", "en": "Information received"},
    "event.files_added": {"ja": "ファイルを受け付けました", "en": "Files received"},
    "event.auto_approved": {"ja": "自動承認されました", "en": "Approved automatically"},
    "decision.repair": {"ja": "修理で対応します。", "en": "We will repair your product."},
    "decision.replace": {"ja": "製品を交換します。", "en": "We will replace your product."},
    "decision.reimburse": {"ja": "費用をお支払いします。", "en": "We will reimburse the cost."},
    "deny.not_active": {"ja": "発生日にご契約が有効ではありません。",
                        "en": "The plan was not active on the date of the incident."},
    "deny.plan_cancelled": {"ja": "ご契約は解約済みです。解約されたご契約では新たな申請を"
                                  "お受けできません。",
                            "en": "The plan has been cancelled. A cancelled plan takes no new "
                                  "claims."},
    "deny.plan_fulfilled": {"ja": "ご契約は保証履行済み(製品交換または保証上限額に到達)です。"
                                  "新たな申請はお受けできません。",
                            "en": "The plan has been fulfilled (the product was replaced or "
                                  "its cover used up). It takes no new claims."},
    "deny.outside_term": {"ja": "発生日が保証期間外です。",
                          "en": "The incident is outside the plan's term."},
    "deny.filed_too_late": {"ja": "申請期限を過ぎています。保証期間内の故障・事故は、"
                                  "保証期間の終了後も所定の期間内であれば申請できますが、"
                                  "その期限を過ぎてからの申請です。",
                            "en": "The claim was filed too late. Incidents inside the term can "
                                  "be claimed for a set time after the term ends, and this "
                                  "claim came after that time."},
    "deny.cap_used_up": {"ja": "発生日の保証年度の保証上限額を、これまでのお支払いで"
                               "使い切っています。",
                         "en": "The cover of the incident's coverage year has been used up by "
                               "what was paid on the plan before."},
    "deny.accident_not_covered": {"ja": "事故による破損は故障保証プランの対象外です。",
                                  "en": "Accidental damage is not covered by a breakdown plan."},
    "deny.waiting_period": {"ja": "発生日が待機期間中です。",
                            "en": "The incident happened during the waiting period."},
    "deny.manufacturer_warranty": {"ja": "メーカー保証期間内のため、メーカー保証の対象です。",
                                   "en": "Covered by the manufacturer: the incident is within "
                                         "the manufacturer's warranty."},
    "deny.product_returned": {"ja": "製品が返品・返金され、ご契約は全額返金で解約されました。"
                                    "この申請へのお支払いはありません。",
                              "en": "The product was returned or refunded and the plan "
                                    "cancelled with a full refund; nothing is paid on this "
                                    "claim."},
    # field problems
    "problem.required": {"ja": "入力してください。", "en": "This field is required."},
    "problem.in_future": {"ja": "未来の日付は入力できません。",
                          "en": "The date cannot be in the future."},
    "problem.invalid_date": {"ja": "日付を YYYY-MM-DD の形式で入力してください。",
                             "en": "Enter the date as YYYY-MM-DD."},
    "problem.invalid_choice": {"ja": "選択してください。", "en": "Choose one of the options."},
    "problem.too_long": {"ja": "5000文字以内で入力してください。",
                         "en": "Use at most 5000 characters."},
    "problem.negative": {"ja": "0以上の金額を入力してください。",
                         "en": "The amount cannot be negative."},
    "problem.invalid_amount": {"ja": "金額を数字で入力してください。",
                               "en": "Enter the amount as a number."},
    "problem.invalid_email": {"ja": "メールアドレスを入力してください。",
                              "en": "Enter an email address."},
    "upload.too_many_files": {"ja": "ファイルは最大5点(1件の申請で合計10点)までです。",
                              "en": "Attach at most 5 files (10 per claim)."},
    "upload.file_too_large": {"ja": "{name} は10MBを超えています。",
                              "en": "{name} is larger than 10 MB."},
    "upload.file_type_refused": {"ja": "{name} はJPEG・PNG・WebP・HEICの写真または"
                                       "PDFではありません。",
                                 "en": "{name} is not a JPEG, PNG, WebP or HEIC photo or a PDF."},
    "upload.empty_file": {"ja": "{name} は空のファイルです。", "en": "{name} is empty."},
    # mails
    "mail.status.subject": {"ja": "【延長保証】申請の状況: {status}",
                            "en": "Your warranty claim: {status}"},
    "mail.status.body": {"ja": "{product} の申請({claim})の状況が「{status}」になりました。",
                         "en": "Your claim {claim} for {product} is now: {status}."},
    "mail.reason": {"ja": "理由: {reason}", "en": "Reason: {reason}"},
    "mail.info_requested": {"ja": "追加で必要な情報: {message}\n"
                                  "下のリンクから申請内容を追加・修正してください。",
                            "en": "What we need: {message}\n"
                                  "Please add it to your claim through the link below."},
    "mail.link": {"ja": "申請の確認: {link}", "en": "See your claim: {link}"},
    # NPS
    "nps.subject": {"ja": "【延長保証】ご意見をお聞かせください",
                    "en": "How did we do with your claim?"},
    "nps.mail": {"ja": "申請の対応が完了しました。当サービスを友人や知人にすすめる可能性を"
                       "0〜10でお聞かせください: {link}",
                 "en": "Your claim is closed. How likely are you to recommend us to a friend "
                       "or colleague, from 0 to 10? {link}"},
    "nps.title": {"ja": "ご意見をお聞かせください", "en": "How did we do?"},
    "nps.question": {"ja": "当サービスを友人や知人にすすめる可能性はどのくらいですか?",
                     "en": "How likely are you to recommend us to a friend or colleague?"},
    "nps.scale": {"ja": "0 = まったくすすめない、10 = ぜひすすめる",
                  "en": "0 = not at all likely, 10 = extremely likely"},
    "nps.comment": {"ja": "コメント(任意)", "en": "Comment (optional)"},
    "nps.submit": {"ja": "送信する", "en": "Send"},
    "nps.thanks": {"ja": "ご回答ありがとうございました。", "en": "Thank you for your answer."},
    "nps.already": {"ja": "この申請にはすでにご回答いただいています。",
                    "en": "You have already answered for this claim."},
    "nps.choose": {"ja": "0〜10から選んでください。", "en": "Choose a score from 0 to 10."},
    # errors
    "error.title": {"ja": "エラー", "en": "Error"},
    "error.code": {"ja": "エラーコード", "en": "Error code"},
}


# Customer contract page, claim messages, self-service cancellation, order status,
# post-purchase pages, terms (issue 15, customers).
MESSAGES.update({
    "contract.title": {"ja": "ご契約 {contract}", "en": "Plan {contract}"},
    "contract.number": {"ja": "契約番号", "en": "Contract number"},
    "contract.product": {"ja": "商品", "en": "Product"},
    "contract.plan": {"ja": "プラン", "en": "Plan"},
    "contract.price": {"ja": "お支払い金額（税込）", "en": "Price paid (tax included)"},
    "contract.status": {"ja": "状態", "en": "Status"},
    "contract.term": {"ja": "保証期間", "en": "Term"},
    "contract.coverage": {"ja": "補償の開始", "en": "When cover starts"},
    "contract.breakdown_start": {"ja": "故障の補償開始日", "en": "Breakdown cover from"},
    "contract.breakdown_hint": {"ja": "メーカー保証（{months}か月）の終了後から補償します。",
                                "en": "After the manufacturer's warranty ({months} months) "
                                      "ends."},
    "contract.breakdown_hint_plain": {"ja": "メーカー保証の終了後から補償します。",
                                      "en": "After the manufacturer's warranty ends."},
    "contract.accident_start": {"ja": "事故による破損の補償開始日",
                                "en": "Accidental damage cover from"},
    "contract.no_accident": {"ja": "このプランは事故による破損を補償しません。",
                             "en": "This plan does not cover accidental damage."},
    "contract.waiting": {"ja": "待機期間", "en": "Waiting period"},
    "contract.waiting_until": {"ja": "{date}より前に起きた故障・事故は対象外です（購入後に追加した"
                                     "プランの30日間）。",
                               "en": "Incidents before {date} are not covered (the 30 days "
                                     "after a plan added later)."},
    "contract.no_waiting": {"ja": "なし", "en": "None"},
    "contract.deductible": {"ja": "免責金額（1回の申請ごと）", "en": "Deductible per claim"},
    "contract.caps": {"ja": "保証年度ごとの補償上限", "en": "Cap for each coverage year"},
    "contract.caps_hint": {"ja": "商品の購入価格 {price} に対する割合です。お支払い済みの補償額は"
                                 "上限から差し引かれます。",
                           "en": "A share of the product's price, {price}. Claims already paid "
                                 "count against it."},
    "contract.year": {"ja": "年度", "en": "Year"},
    "contract.year_n": {"ja": "{n}年目", "en": "Year {n}"},
    "contract.period": {"ja": "期間", "en": "Period"},
    "contract.cap_percent": {"ja": "割合", "en": "Share"},
    "contract.cap_amount": {"ja": "上限額", "en": "Cap"},
    "contract.claims": {"ja": "申請", "en": "Claims"},
    "contract.no_claims": {"ja": "このご契約への申請はありません。",
                           "en": "No claims on this plan."},
    "contract.claim_filed": {"ja": "申請日", "en": "Filed"},
    "contract.claim_incident": {"ja": "発生日", "en": "Incident"},
    "contract.terms": {"ja": "ご契約条件", "en": "Terms"},
    "contract.terms_link": {"ja": "保証の内容と契約条件（全文）",
                            "en": "What is covered and the full terms"},
    "contract.view": {"ja": "契約内容を見る", "en": "View plan"},
    "contract.documents": {"ja": "書類", "en": "Documents"},
    "contract.cancel_title": {"ja": "解約", "en": "Cancel this plan"},
    "contract.cancel_button": {"ja": "解約して返金額を確認する", "en": "See the refund and cancel"},
    "contract.cancelled_notice": {"ja": "このプランは解約されました。返金 {amount} の手続きを"
                                        "しています。",
                                  "en": "This plan is cancelled. Your refund of {amount} is on "
                                        "its way."},
    "contract.refund_status": {"ja": "返金の状況", "en": "Refund"},
    "selfcancel.off": {"ja": "解約はストアのサポートへお問い合わせください。",
                       "en": "To cancel, contact the store's support."},
    "selfcancel.not_active": {"ja": "このプランは有効ではないため解約できません。",
                              "en": "This plan is not active, so it cannot be cancelled."},
    "selfcancel.claims_open": {"ja": "処理中の申請があるため、今は解約できません。申請の完了後に"
                                     "解約できます。",
                               "en": "A claim on this plan is still open, so it cannot be "
                                     "cancelled now; you can once the claim is settled."},
    "selfcancel.after_free_look": {"ja": "購入から{days}日を過ぎたため、解約はストアのサポートへ"
                                         "お問い合わせください（日割りで返金します）。",
                                   "en": "More than {days} days have passed since you bought "
                                         "it: to cancel (with a pro-rata refund), contact the "
                                         "store's support."},
    "selfcancel.no_payment": {"ja": "このご注文はこちらで返金できないため、ストアのサポートへ"
                                    "お問い合わせください。",
                              "en": "This order cannot be refunded here: contact the store's "
                                    "support."},
    "selfcancel.term_ended": {"ja": "保証期間が終了しているため解約できません。",
                              "en": "The term has ended, so there is nothing to cancel."},
    "selfcancel.self_cancel_not_active": {"ja": "このプランは有効ではないため解約できません。",
                                          "en": "This plan is not active, so it cannot be "
                                                "cancelled."},
    "selfcancel.claims_open_now": {"ja": "処理中の申請があるため解約できませんでした。",
                                   "en": "A claim on this plan is open, so it was not "
                                         "cancelled."},
    "selfcancel.failed": {"ja": "解約できませんでした（{code}）。", "en": "The plan was not "
                                                                      "cancelled ({code})."},
    "cancel.title": {"ja": "プランの解約", "en": "Cancel your plan"},
    "cancel.intro": {"ja": "本日解約すると、次の金額を返金します。確定するまで何も変更されません。",
                     "en": "If you cancel today, we refund the amount below. Nothing changes "
                           "until you confirm."},
    "cancel.moved": {"ja": "表示していた返金額が変わりました。新しい金額をご確認ください。",
                     "en": "The refund has changed since the page was shown. Please check the "
                           "new amount."},
    "cancel.refund": {"ja": "返金額", "en": "Refund"},
    "cancel.rule": {"ja": "返金の計算", "en": "How it is worked out"},
    "cancel.rule.free_look": {"ja": "購入から{days}日以内の解約のため全額返金",
                              "en": "Cancelled within {days} days of the purchase: the full "
                                    "price"},
    "cancel.rule.pro_rata": {"ja": "残り{unused}日 / {span}日分の日割り（解約手数料{fee}と"
                                   "お支払い済みの補償{claims}を差し引き）",
                             "en": "{unused} unused days of {span}, pro rata, less the "
                                   "cancellation fee of {fee} and claims paid of {claims}"},
    "cancel.price": {"ja": "プランの価格", "en": "Plan price"},
    "cancel.date": {"ja": "解約日", "en": "Cancellation date"},
    "cancel.where": {"ja": "ご購入時のお支払い方法に返金します。", "en": "The refund goes back "
                                                                 "to the card you paid with."},
    "cancel.confirm": {"ja": "返金額 {amount} で解約する", "en": "Cancel and refund {amount}"},
    "cancel.keep": {"ja": "解約しないで戻る", "en": "Keep my plan"},
    "refund.pending": {"ja": "手続き中", "en": "In progress"},
    "refund.succeeded": {"ja": "返金済み", "en": "Refunded"},
    "refund.not_needed": {"ja": "返金なし", "en": "Nothing to refund"},
    "refund.failed": {"ja": "手続き中（再試行しています）", "en": "In progress (retrying)"},
    "refund.requires_action": {"ja": "手続き中", "en": "In progress"},
    "refund.canceled": {"ja": "ストアが確認しています", "en": "Being checked by the store"},
    # claim messages
    "claim.messages": {"ja": "やりとり", "en": "Messages"},
    "claim.no_messages": {"ja": "メッセージはありません。", "en": "No messages yet."},
    "claim.message_from.staff": {"ja": "ストアから", "en": "From the store"},
    "claim.message_from.customer": {"ja": "お客さまから", "en": "From you"},
    "claim.message_files": {"ja": "添付 {count}点", "en": "{count} file(s) attached"},
    "claim.original": {"ja": "申請時の内容", "en": "As filed"},
    "claim.answer": {"ja": "回答", "en": "Your answer"},
    "claim.answer_hint": {"ja": "申請時の内容はそのまま残り、この回答が追加されます。",
                          "en": "What you filed stays as it is; this answer is added to it."},
    "claim.estimate": {"ja": "見積額", "en": "Estimate"},
    # new link
    "link.new_title": {"ja": "新しいログインリンク", "en": "A new sign-in link"},
    # order page
    "order.title": {"ja": "ご注文ありがとうございます", "en": "Thank you for your order"},
    "order.number": {"ja": "注文番号", "en": "Order"},
    "order.total": {"ja": "合計", "en": "Total"},
    "order.state.waiting": {"ja": "お支払いを確認しています…", "en": "Confirming your payment…"},
    "order.state.waiting_hint": {"ja": "このページは自動で更新されます。",
                                 "en": "This page updates by itself."},
    "order.state.slow": {"ja": "お支払いの確認に時間がかかっています。確認でき次第メールで"
                               "お知らせします。",
                         "en": "Confirming the payment is taking longer than usual. We will "
                               "mail you as soon as it is confirmed."},
    "order.state.paid": {"ja": "お支払いが完了しました", "en": "Paid"},
    "order.state.paid_hint": {"ja": "保証の内容をメールでお送りしました。",
                              "en": "We have mailed you your plan."},
    "order.state.expired": {"ja": "お支払いは完了していません", "en": "Not paid"},
    "order.state.expired_hint": {"ja": "お支払いの期限が切れました。もう一度お試しください。",
                                 "en": "The payment window has closed. Please try again."},
    "order.state.refunded": {"ja": "返金済み", "en": "Refunded"},
    "order.reload": {"ja": "再読み込み", "en": "Reload"},
    "order.to_plans": {"ja": "ご契約を確認する", "en": "See my plans"},
    # post-purchase pages
    "add.title": {"ja": "延長保証を追加", "en": "Add a protection plan"},
    "add.line": {"ja": "{title} × {quantity}（{date}ご購入）",
                 "en": "{title} × {quantity} (bought {date})"},
    "add.plan": {"ja": "プラン", "en": "Plan"},
    "add.quantity": {"ja": "数量", "en": "Quantity"},
    "add.quantity_hint": {"ja": "保証を付けられるのは残り{n}台です。",
                          "en": "{n} unit(s) can still get a plan."},
    "add.waiting": {"ja": "購入後に追加したプランは、追加から30日間は申請の対象外です"
                          "（待機期間）。",
                    "en": "A plan added after the purchase covers incidents from 30 days after "
                          "you add it (the waiting period)."},
    "add.submit": {"ja": "お支払いへ進む", "en": "Continue to payment"},
    "add.choose": {"ja": "プランを選んでください。", "en": "Choose a plan."},
    "add.bad_quantity": {"ja": "数量を確認してください。", "en": "Check the quantity."},
    "add.none": {"ja": "この商品に追加できるプランはありません。",
                 "en": "No plan can be added to this product."},
    "add.done_title": {"ja": "ありがとうございます", "en": "Thank you"},
    "add.refused": {"ja": "このプランは追加できませんでした。",
                    "en": "This plan could not be added."},
    "add.unknown": {"ja": "お支払いの状況は、メールでお知らせします。",
                    "en": "We will mail you once the payment is confirmed."},
    "add.plan_name": {"ja": "{coverage}・{months}か月", "en": "{coverage}, {months} months"},
    # terms page
    "terms.title": {"ja": "保証の内容と契約条件", "en": "What is covered, and the terms"},
    "terms.standard": {"ja": "故障保証：メーカー保証の終了後、通常の使用で起きた機械的・電気的な"
                             "故障を修理または交換します。",
                       "en": "Breakdown: after the manufacturer's warranty ends, mechanical "
                             "and electrical failures in normal use are repaired or replaced."},
    "terms.accident": {"ja": "故障・事故保証：上記の故障に加え、落下・水濡れなど事故による破損を"
                             "ご購入日から補償します。",
                       "en": "Breakdown and accidental damage: the above, plus accidental "
                             "damage (drops, spills) from the day of purchase."},
    "terms.exclusions": {"ja": "対象外：消耗品、外観のみの傷、紛失・盗難、故意による損傷、"
                               "メーカー保証の対象となる故障。",
                         "en": "Not covered: consumables, cosmetic scratches, loss or theft, "
                               "deliberate damage, failures the manufacturer's warranty "
                               "covers."},
    "terms.caps": {"ja": "補償額には保証年度ごとの上限があり（商品の購入価格に対する割合）、"
                         "1回の申請ごとに免責金額を差し引きます。",
                   "en": "Payouts are capped per coverage year (a share of the product's "
                         "price), less the deductible on each claim."},
    "terms.cancel": {"ja": "購入から{days}日以内で補償のお支払いがない場合は全額返金で"
                           "解約できます。"
                           "それ以降は残りの日数に応じて日割りで返金します（解約手数料{fee}と"
                           "お支払い済みの補償額を差し引きます）。",
                     "en": "Cancel within {days} days of the purchase, with no claim paid, for "
                           "a full refund. Later, the unused days are refunded pro rata, less "
                           "a cancellation fee of {fee} and any claims paid."},
    "terms.claims": {"ja": "保証期間中の故障・事故は、保証期間の終了後{window}日まで申請できます。",
                     "en": "Incidents during the term can be claimed up to {window} days after "
                           "the term ends."},
    "terms.transfer": {"ja": "商品が返品された場合、プランは全額返金で解約されます。プランは"
                             "新しい所有者に譲渡できます。",
                       "en": "A returned product cancels its plans with a full refund. Plans "
                             "can be transferred to a new owner."},
    "plan.line_title": {"ja": "{coverage}・{months}か月 — {product}",
                        "en": "{coverage}, {months} months — {product}"},
    "plan.coverage.standard": {"ja": "延長保証（故障）", "en": "Breakdown protection"},
    "plan.coverage.accident": {"ja": "延長保証（破損・故障）",
                               "en": "Accident & breakdown protection"},
})


def t(lang: str, key: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to Japanese, then to the key itself)."""
    texts = MESSAGES.get(key)
    if texts is None:
        return key
    text = texts.get(lang) or texts[DEFAULT]
    return text.format(**values) if values else text


def pick(accept: str | None) -> str:
    """The supported language to use for a stored or requested code, else the default."""
    return accept if accept in LANGUAGES else DEFAULT
