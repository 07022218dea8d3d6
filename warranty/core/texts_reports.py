"""Texts of the finance dashboard and the background exports, in Japanese and English
(merged into warranty.core.i18n's messages; read them with ``t(lang, key)``)."""

from __future__ import annotations

_CATEGORIES = {
    "electronics": ("家電・AV", "Electronics"), "appliances": ("生活家電", "Appliances"),
    "computers": ("パソコン", "Computers"), "phones": ("スマートフォン", "Phones"),
    "audio": ("オーディオ", "Audio"), "furniture": ("家具", "Furniture"),
    "outdoor": ("アウトドア", "Outdoor"), "eyewear": ("眼鏡", "Eyewear"),
    "car_accessories": ("カー用品", "Car accessories"), "bicycles": ("自転車", "Bicycles"),
    "sports": ("スポーツ用品", "Sports"), "musical_instruments": ("楽器", "Musical instruments"),
    "jewelry": ("ジュエリー", "Jewelry"), "unmapped": ("未分類", "Unmapped"),
}

REPORT_MESSAGES: dict[str, dict[str, str]] = {
    "reports.title": {"ja": "保証レポート", "en": "Warranty reports"},
    "reports.from": {"ja": "開始日", "en": "From"},
    "reports.to": {"ja": "終了日", "en": "To"},
    "reports.show": {"ja": "表示", "en": "Show"},
    "reports.contents": {"ja": "目次", "en": "Contents"},
    "reports.no_data": {"ja": "この期間のデータはありません。", "en": "No data for this period."},
    "reports.points": {"ja": "{value}ポイント", "en": "{value} pt"},
    "reports.interval": {"ja": "95%信頼区間：", "en": "95% interval:"},
    # finance
    "reports.finance.title": {"ja": "売上と収益", "en": "Sales and revenue"},
    "reports.finance.period": {"ja": "売上と収益（{start}〜{end}）",
                               "en": "Finance, {start} to {end}"},
    "reports.finance.deferred_end": {"ja": "期末の繰延収益",
                                     "en": "Deferred revenue at period end"},
    "reports.finance.by_category": {"ja": "カテゴリー別", "en": "By category"},
    "reports.adjustments.title": {"ja": "期間中に計上した調整",
                                  "en": "Adjustments booked in the period"},
    "reports.adjustments.intro": {
        "ja": "締めた月に関わる変更は、最初の未締め日に調整として計上されます。",
        "en": "Changes recorded after the month they concern was closed, booked on the first "
              "open day."},
    "reports.adjustments.booked_on": {"ja": "計上日", "en": "Booked on"},
    "reports.adjustments.concerns": {"ja": "対象日", "en": "Concerns"},
    "reports.adjustments.what": {"ja": "内容", "en": "What"},
    "reports.adjustments.contract": {"ja": "契約", "en": "Contract"},
    "reports.adjustments.amount": {"ja": "金額", "en": "Amount"},
    "reports.adjustments.sale": {"ja": "プラン販売", "en": "plan sale"},
    "reports.adjustments.refund": {"ja": "返金", "en": "refund"},
    "reports.revenue.title": {"ja": "売上・収益の推移", "en": "Sales and revenue over time"},
    "reports.revenue.flows": {"ja": "月別の売上、返金、収益認識額",
                              "en": "Gross sales, refunds and earned revenue by month"},
    "reports.revenue.deferred": {"ja": "月末の繰延収益",
                                 "en": "Deferred revenue at each month end"},
    "reports.revenue.rates": {"ja": "月別の損害率と解約率",
                              "en": "Loss ratio and cancellation rate by month"},
    "reports.revenue.rates_note": {
        "ja": "損害率＝支払保険金÷収益認識額。解約率＝期間中の解約数÷期間中の販売数。",
        "en": "Loss ratio = claims paid ÷ earned revenue. Cancellation rate = cancellations "
              "booked ÷ plans sold in the month."},
    # columns
    "reports.col.month": {"ja": "月", "en": "Month"},
    "reports.col.category": {"ja": "カテゴリー", "en": "Category"},
    "reports.col.placement": {"ja": "表示場所", "en": "Placement"},
    "reports.col.plans_sold": {"ja": "販売プラン数", "en": "Plans sold"},
    "reports.col.gross_sales": {"ja": "総売上", "en": "Gross sales"},
    "reports.col.refunds": {"ja": "返金", "en": "Refunds"},
    "reports.col.net_sales": {"ja": "純売上", "en": "Net sales"},
    "reports.col.earned_revenue": {"ja": "収益認識額", "en": "Earned revenue"},
    "reports.col.deferred_revenue": {"ja": "繰延収益", "en": "Deferred revenue"},
    "reports.col.claims_paid": {"ja": "支払保険金", "en": "Claims paid"},
    "reports.col.loss_ratio": {"ja": "損害率", "en": "Loss ratio"},
    "reports.col.cancellations": {"ja": "解約数", "en": "Cancellations"},
    "reports.col.cancellation_rate": {"ja": "解約率", "en": "Cancellation rate"},
    "reports.col.arm": {"ja": "群", "en": "Arm"},
    "reports.col.visitors": {"ja": "訪問者", "en": "Visitors"},
    "reports.col.converting": {"ja": "購入した訪問者", "en": "Converting visitors"},
    "reports.col.conversion_rate": {"ja": "購入率", "en": "Conversion rate"},
    "reports.col.orders": {"ja": "注文数", "en": "Orders"},
    "reports.col.order_value": {"ja": "平均注文額", "en": "Order value"},
    "reports.col.revenue_per_visitor": {"ja": "訪問者あたり売上", "en": "Revenue per visitor"},
    "reports.col.measure": {"ja": "指標", "en": "Measure"},
    "reports.col.difference": {"ja": "差（提示群−対照群）",
                               "en": "Difference (treatment − holdout)"},
    "reports.col.ci": {"ja": "95%信頼区間", "en": "95% interval"},
    "reports.col.relative_lift": {"ja": "相対リフト", "en": "Relative lift"},
    "reports.col.p_value": {"ja": "p値", "en": "p-value"},
    "reports.col.product_units": {"ja": "商品数", "en": "Product units"},
    "reports.col.plan_units": {"ja": "プラン数", "en": "Plan units"},
    "reports.col.product_revenue": {"ja": "商品売上", "en": "Product revenue"},
    "reports.col.plan_revenue": {"ja": "プラン売上", "en": "Plan revenue"},
    "reports.col.group": {"ja": "顧客グループ", "en": "Customers"},
    "reports.col.cohort": {"ja": "初回購入月", "en": "Cohort"},
    "reports.col.customers": {"ja": "顧客数", "en": "Customers"},
    "reports.col.purchases_per_year": {"ja": "年間購入回数", "en": "Purchases per year"},
    "reports.col.years_retained": {"ja": "継続年数", "en": "Years retained"},
    "reports.col.ltv": {"ja": "LTV", "en": "LTV"},
    "reports.col.outcome": {"ja": "申請の結果", "en": "Claim outcome"},
    "reports.col.answers": {"ja": "回答数", "en": "Answers"},
    "reports.col.promoters": {"ja": "推奨者（9〜10）", "en": "Promoters (9–10)"},
    "reports.col.detractors": {"ja": "批判者（0〜6）", "en": "Detractors (0–6)"},
    "reports.col.nps": {"ja": "NPS", "en": "NPS"},
    # conversion
    "reports.conversion.title": {"ja": "購入率（ホールドアウト実験）",
                                 "en": "Conversion (holdout experiment)"},
    "reports.conversion.intro": {
        "ja": "訪問者の約10%（対照群）には保証プランを表示しません。両群の購入率と売上を比べると、"
              "プランの提示が購入に与える効果がわかります。",
        "en": "About 10% of visitors (the holdout) are never shown a plan. Comparing the two "
              "arms shows what offering plans does to conversion and revenue."},
    "reports.conversion.per_arm": {"ja": "群別の購入率", "en": "Conversion rate per arm"},
    "reports.conversion.difference": {"ja": "購入率の差と95%信頼区間",
                                      "en": "Conversion rate difference with its 95% interval"},
    "reports.conversion.rate_difference": {"ja": "購入率の差（提示群−対照群）",
                                           "en": "Conversion rate, treatment − holdout"},
    "reports.conversion.rpv_difference": {
        "ja": "訪問者あたり売上の差と95%信頼区間",
        "en": "Revenue per visitor difference with its 95% interval"},
    "reports.conversion.how": {
        "ja": "区間が0（点線）をまたがなければ、95%の信頼度で差があるといえます"
              "（二標本比率のz検定）。",
        "en": "An interval that does not cross 0 (the dashed line) is a difference the data "
              "shows at 95% confidence (two-proportion z-test)."},
    "reports.conversion.refused_before": {
        "ja": "このサービスが署名していない訪問者IDのため"
              "受け付けなかったもの（上の数値に含みません）：",
        "en": "Refused for a visitor id this service did not sign (not counted above):"},
    "reports.conversion.refused_events": {"ja": "件のイベント、", "en": "events,"},
    "reports.conversion.refused_checkouts": {"ja": "件の帰属なしの購入。",
                                             "en": "checkouts sold without attribution."},
    "reports.arm.treatment": {"ja": "提示群", "en": "Treatment (offers shown)"},
    "reports.arm.holdout": {"ja": "対照群（プラン非表示）", "en": "Holdout (no offers)"},
    # attach
    "reports.attach.title": {"ja": "付帯率", "en": "Attach rate"},
    "reports.attach.intro": {"ja": "販売した商品のうち保証プランが付いた割合（数量と金額）。",
                             "en": "The share of products sold with a plan, by units and by "
                                   "revenue."},
    "reports.attach.overall": {"ja": "全体：数量 {units}、金額 {revenue}。",
                               "en": "Overall: {units} by units, {revenue} by revenue."},
    "reports.attach.by_placement": {"ja": "表示場所別の付帯率", "en": "Attach rate by placement"},
    "reports.attach.by_category": {"ja": "カテゴリー別の付帯率", "en": "Attach rate by category"},
    "reports.attach.units": {"ja": "付帯率（数量）", "en": "Attach rate (units)"},
    "reports.attach.revenue": {"ja": "付帯率（金額）", "en": "Attach rate (revenue)"},
    "reports.placement.product_page": {"ja": "商品ページ", "en": "Product page"},
    "reports.placement.add_to_cart_modal": {"ja": "カート追加時", "en": "Add-to-cart modal"},
    "reports.placement.cart": {"ja": "カート", "en": "Cart"},
    "reports.placement.post_purchase": {"ja": "購入後", "en": "After purchase"},
    "reports.placement.tracking": {"ja": "配送状況ページ", "en": "Order tracking"},
    "reports.placement.api": {"ja": "API", "en": "API"},
    # retention
    "reports.retention.title": {"ja": "リピート購入と継続率",
                                "en": "Repeat purchases and retention"},
    "reports.retention.intro": {
        "ja": "期間内に初回購入した顧客を、初回購入で保証プランを付けたかどうかで比べます。",
        "en": "Customers whose first purchase is in the period, with and without a plan on "
              "that first purchase."},
    "reports.retention.repeat": {"ja": "リピート購入率", "en": "Repeat-purchase rate"},
    "reports.retention.days": {"ja": "{days}日以内", "en": "within {days} days"},
    "reports.retention.cohorts": {"ja": "月別コホート継続率（初回購入の翌月以降に購入した割合）",
                                  "en": "Monthly cohort retention (share buying in month k "
                                        "after the first purchase)"},
    "reports.retention.cohorts_note": {
        "ja": "グラフは全コホートの合計、表は初回購入月ごとです。",
        "en": "The chart shows all cohorts together; the table each first-purchase month."},
    "reports.retention.month": {"ja": "{month}か月後", "en": "M{month}"},
    "reports.retention.all": {"ja": "全体", "en": "all"},
    "reports.retention.ltv": {"ja": "顧客生涯価値（LTV）", "en": "Lifetime value (LTV)"},
    "reports.retention.ltv_note": {
        "ja": "LTV＝平均注文額×粗利率（{margin}）×年間購入回数×継続年数。",
        "en": "LTV = average order value × gross margin ({margin}) × purchases per year × "
              "years retained."},
    "reports.retention.ltv_needs_a_year": {
        "ja": "LTVと365日のリピート率は、初回購入から1年以上たった顧客で計算します。"
              "期間を1年以上前に設定すると表示されます。",
        "en": "LTV and the 365-day repeat rate need customers observed for a full year after "
              "their first purchase: choose a period that ends a year ago or earlier."},
    "reports.group.with_plan": {"ja": "プランあり", "en": "With a plan"},
    "reports.group.without_plan": {"ja": "プランなし", "en": "Without a plan"},
    # nps
    "reports.nps.title": {"ja": "NPS（申請後の推奨度）", "en": "NPS after claims"},
    "reports.nps.intro": {
        "ja": "申請の完了後に「おすすめしますか」（0〜10）と尋ねた回答。"
              "NPS＝推奨者の割合−批判者の割合。",
        "en": "Answers to \"would you recommend us\" (0–10) asked after each claim closes. "
              "NPS = % promoters − % detractors."},
    "reports.nps.by_outcome": {"ja": "申請の結果別のNPS", "en": "NPS by claim outcome"},
    "reports.nps.overall": {"ja": "全体", "en": "All answers"},
    "reports.nps.score": {"ja": "{value}", "en": "{value}"},
    "reports.outcome.repair": {"ja": "修理", "en": "Repair"},
    "reports.outcome.replace": {"ja": "交換", "en": "Replacement"},
    "reports.outcome.reimburse": {"ja": "費用の払い戻し", "en": "Reimbursement"},
    "reports.outcome.denied": {"ja": "不承認", "en": "Denied"},
    "reports.outcome.closed": {"ja": "支払いなしで完了", "en": "Closed without payout"},
    "reports.status.paid": {"ja": "支払済み", "en": "paid"},
    "reports.status.closed": {"ja": "支払いなしで完了", "en": "closed without payout"},
    "reports.status.approved": {"ja": "承認済み", "en": "approved"},
    "reports.status.in_review": {"ja": "審査中", "en": "in review"},
    # closed months
    "reports.books.title": {"ja": "月次締め", "en": "Closed months"},
    "reports.books.closed_message": {
        "ja": "{month} を締めました。この月に関わる以降の変更は、"
              "最初の未締め月に調整として計上されます。",
        "en": "{month} is closed. Later changes that concern it are booked in the first open "
              "month as adjustments."},
    "reports.books.closed_through_before": {"ja": "締め済み：",
                                            "en": "The books are closed through"},
    "reports.books.closed_through_after": {"ja": "まで。最初の未締め日は {day} です。",
                                           "en": "; the first open day is {day}."},
    "reports.books.month": {"ja": "月", "en": "Month"},
    "reports.books.closed": {"ja": "締めた日時", "en": "Closed"},
    "reports.books.by": {"ja": "担当", "en": "By"},
    "reports.books.deferred_month_end": {"ja": "月末の繰延収益", "en": "Deferred at month end"},
    "reports.books.note": {"ja": "メモ", "en": "Note"},
    "reports.books.none": {"ja": "締めた月はまだありません。", "en": "No month is closed yet."},
    "reports.books.close": {"ja": "{month} を締める…", "en": "Close {month}…"},
    "reports.books.nothing_to_close": {
        "ja": "締められる月はありません。取引のある最初の未締め月がまだ終わっていません。",
        "en": "No month to close: the first open month with activity has not ended yet."},
    # exports
    "reports.exports.title": {"ja": "エクスポート", "en": "Exports"},
    "reports.exports.period_files": {"ja": "表示中の期間のファイル：",
                                     "en": "Files for the period shown:"},
    "reports.exports.background": {"ja": "ストア全体のエクスポート（バックグラウンド）",
                                   "en": "Whole-store exports (in the background)"},
    "reports.exports.background_intro": {
        "ja": "大きなファイルはバックグラウンドで作成します。開始すると進み具合が表示され、"
              "完成するとダウンロードできます。既定の期間はストア全体（{start}〜{end}）です。",
        "en": "Large files are written in the background: start one, follow its progress, "
              "and download it when it is ready. The default period is the whole store "
              "({start} to {end})."},
    "reports.exports.report": {"ja": "内容", "en": "Export"},
    "reports.exports.format": {"ja": "形式", "en": "Format"},
    "reports.exports.start": {"ja": "エクスポートを開始", "en": "Start the export"},
    "reports.exports.report_orders": {"ja": "注文", "en": "Orders"},
    "reports.exports.report_contracts": {"ja": "契約", "en": "Contracts"},
    "reports.exports.report_movements": {"ja": "入出金", "en": "Money movements"},
    "reports.exports.all": {"ja": "すべてのエクスポートと進み具合",
                            "en": "All exports and their progress"},
    "reports.exports.page_title": {"ja": "バックグラウンドのエクスポート",
                                   "en": "Background exports"},
    "reports.exports.started": {"ja": "エクスポートを開始しました。"
                                      "完成するとここにダウンロードリンクが表示されます。",
                                "en": "The export has started. A download link appears here "
                                      "when it is ready."},
    "reports.exports.refreshing": {"ja": "作成中のため、"
                                         "このページは{seconds}秒ごとに更新されます。",
                                   "en": "This page reloads every {seconds} seconds while an "
                                         "export is being written."},
    "reports.exports.none": {"ja": "エクスポートはまだありません。", "en": "No exports yet."},
    "reports.exports.back": {"ja": "レポートに戻る", "en": "Back to the reports"},
    "reports.exports.period": {"ja": "期間", "en": "Period"},
    "reports.exports.status": {"ja": "状態", "en": "Status"},
    "reports.exports.progress": {"ja": "進み具合", "en": "Progress"},
    "reports.exports.requested": {"ja": "依頼", "en": "Requested"},
    "reports.exports.file": {"ja": "ファイル", "en": "File"},
    "reports.exports.rows": {"ja": "{done} / {total} 行", "en": "{done} of {total} rows"},
    "reports.exports.download": {"ja": "ダウンロード", "en": "Download"},
    "reports.exports.status_pending": {"ja": "待機中", "en": "Waiting"},
    "reports.exports.status_running": {"ja": "作成中", "en": "Writing"},
    "reports.exports.status_done": {"ja": "完成", "en": "Ready"},
    "reports.exports.status_dead": {"ja": "失敗（担当者の確認待ち）",
                                    "en": "Failed (on the attention queue)"},
    **{f"reports.category.{code}": {"ja": ja, "en": en}
       for code, (ja, en) in _CATEGORIES.items()},
}
