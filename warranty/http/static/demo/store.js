/* The demo store's own script: variant picker, checkout button (uses window.Warranty), and
the order page's wait for the payment. */
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
  // The order page: while the payment is not confirmed, ask the store again every few
  // seconds (the page itself says so; without script it reloads itself instead).
  const state = document.querySelector('#order-state[data-poll]');
  if (state) {
    let tries = 0;
    const poll = async () => {
      tries += 1;
      let data = null;
      try {
        const res = await fetch(state.dataset.poll, { headers: { Accept: 'application/json' } });
        data = res.ok ? await res.json() : null;
      } catch (err) { /* offline for a moment: ask again */ }
      if (data && data.state !== 'waiting') {
        state.dataset.state = data.state;
        state.querySelector('#order-status').textContent = data.text;
        state.querySelector('#order-status').dataset.state = data.state;
        state.querySelector('.order-hint').textContent = data.hint;
        document.querySelectorAll('[data-when-paid]').forEach((el) => { el.hidden = data.state !== 'paid'; });
        return;
      }
      if (tries >= +state.dataset.pollTimes) {
        state.querySelector('.order-hint').textContent = state.dataset.slowText;
        return;
      }
      setTimeout(poll, +state.dataset.pollMs);
    };
    setTimeout(poll, +state.dataset.pollMs);
  }
})();
