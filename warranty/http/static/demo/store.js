/* The demo store's own script: variant picker and checkout button (uses window.Warranty). */
(() => {
  'use strict';
  const variant = document.querySelector('#variant');
  if (variant) {
    variant.addEventListener('change', () => {
      const opt = variant.selectedOptions[0];
      const product = document.querySelector(variant.dataset.variantFor);
      // The embed watches these attributes and reprices its offers.
      product.dataset.sku = opt.value;
      product.dataset.price = opt.dataset.price;
      product.dataset.title = opt.dataset.title;
      document.querySelector('#sku-input').value = opt.value;
      document.querySelector('#product-title').textContent = opt.dataset.title;
      document.querySelector('#product-price').textContent = opt.dataset.priceText;
      history.replaceState(null, '', '/products/' + encodeURIComponent(opt.value));
    });
  }
  const checkout = document.querySelector('#checkout');
  if (checkout) {
    checkout.addEventListener('submit', async (e) => {
      e.preventDefault();
      const button = checkout.querySelector('button');
      const error = document.querySelector('#checkout-error');
      button.disabled = true;
      error.textContent = '';
      try {
        await window.Warranty.ready;
        await window.Warranty.checkout({
          order_ref: checkout.dataset.orderRef,
          customer_email: checkout.querySelector('#email').value,
          success_url: checkout.dataset.successUrl,
          cancel_url: checkout.dataset.cancelUrl,
        });
      } catch (err) {
        error.textContent = err.message;
        button.disabled = false;
      }
    });
  }
})();
