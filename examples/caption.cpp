// caption.cpp: the caption example from C++, with RAII owners for the handles.
// usage: caption_cpp MODEL_DIR IMAGE [PROMPT]
#include <paligemma.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

struct ModelFree {
    void operator()(pg_model *m) const { pg_model_free(m); }
};
struct SessionFree {
    void operator()(pg_session *s) const { pg_session_free(s); }
};
struct ImageFree {
    void operator()(pg_image *i) const { pg_image_free(i); }
};

void check(pg_status st, const char *what)
{
    if (st != PG_OK) {
        throw std::runtime_error(std::string(what) + ": " + pg_last_error());
    }
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL_DIR IMAGE [PROMPT]\n";
        return 2;
    }
    const std::string prompt = argc > 3 ? argv[3] : "caption en";
    try {
        pg_model *m = nullptr;
        check(pg_model_load(&m, argv[1], nullptr), "load model");
        std::unique_ptr<pg_model, ModelFree> model(m);
        pg_image *i = nullptr;
        check(pg_image_load_file(&i, argv[2], nullptr), "load image");
        std::unique_ptr<pg_image, ImageFree> image(i);
        pg_session *s = nullptr;
        check(pg_session_new(&s, model.get(), nullptr), "new session");
        std::unique_ptr<pg_session, SessionFree> session(s);

        check(pg_session_set_image(session.get(), image.get()), "set image");
        check(pg_session_set_prompt(session.get(), prompt.data(), prompt.size()), "prompt");
        pg_generate_options opts;
        PG_GENERATE_OPTIONS_INIT(&opts);
        opts.max_new_tokens = 64;
        opts.on_token = [](void *, const pg_token_event *ev) -> int {
            std::cout.write(ev->text, static_cast<std::streamsize>(ev->text_len)).flush();
            return 0;
        };
        check(pg_session_generate(session.get(), &opts), "generate");
        std::cout << '\n';
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
