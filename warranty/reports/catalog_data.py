"""Names the reports and the synthetic data share."""

CATEGORIES = ["electronics", "appliances", "computers", "phones", "audio", "furniture",
              "outdoor", "eyewear", "car_accessories", "bicycles", "sports",
              "musical_instruments", "jewelry"]
PLACEMENTS = ["product_page", "add_to_cart_modal", "cart", "post_purchase"]
